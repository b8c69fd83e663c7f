"""Process-wide settings the app makes once, before any model runs.

    label = keep_freed_memory()     # "heap" (glibc told to keep large buffers), or why not
    with SlowStartNotice():         # a line on stderr if the block takes over 3 s (a first run compiling kernels)
        walker.start(image)

Each chunk allocates and frees the same large buffers: the decoder's activations (12 frames x 64 channels x 128 x
128 floats: 50 MB before its last upsampling), the frames, the memory's renders. glibc hands every allocation above
a threshold (128 KiB, rising with use to at most 32 MiB) to mmap, and unmaps it on free, so every chunk gets those
buffers back as fresh pages, which the kernel zero-fills one page fault at a time on first touch. On the 2-core VM
that was a quarter of the decoder's time (its last pixel shuffle took 17.6 ms with fresh pages, 3.4 ms with reused
ones; the whole decode 113-122 -> 79-88 ms a chunk). Told to take allocations below 256 MiB from the heap and to
keep up to 1 GiB of freed heap, glibc hands the same pages back each chunk. Nothing computed changes and the peak
memory does not grow (the peak was those same buffers, live at once), but what the process frees stays with it (on
a 10-minute walk about 90 MiB more, flat: benchmarks/RESULTS.md "Speed").

WORLDWALK_MALLOC=system leaves the C library as it is (`heap`, or unset, is the default); any other value is refused
with a one-line error, since a misspelt opt-out would otherwise be silently ignored. Elsewhere than glibc (macOS,
Windows, musl) this does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 256 << 20  # allocations below this come from the heap
TRIM_THRESHOLD = 1 << 30  # freed heap kept up to this much

_state: str | None = None  # what keep_freed_memory() did, once
CHOICES = ("heap", "system")  # WORLDWALK_MALLOC's values (unset or empty: heap)


class SettingError(ValueError):
    """An environment setting the app reads has a value it does not know (the message names it and the choices)."""


def malloc_choice() -> str:
    """WORLDWALK_MALLOC as one of CHOICES ("heap" when unset or empty); SettingError for anything else."""
    raw = os.environ.get("WORLDWALK_MALLOC", "")
    v = raw.strip().lower()
    if v and v not in CHOICES:
        raise SettingError(f"WORLDWALK_MALLOC={raw!r}: expected 'heap' (the default: large freed buffers kept for the "
                           f"next chunk) or 'system' (the C library's own thresholds), or unset")
    return v or "heap"


def keep_freed_memory() -> str:
    """Tell glibc's malloc to keep large freed buffers for the next chunk (see the module doc). Idempotent.
    -> "heap" when set, else a few words on why not (for benchmark headers). SettingError for an unknown
    WORLDWALK_MALLOC."""
    global _state
    if _state is not None:
        return _state
    if malloc_choice() == "system":
        _state = "system (WORLDWALK_MALLOC=system)"
    elif not sys.platform.startswith("linux"):
        _state = "system (not glibc)"
    else:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            gnu = getattr(libc, "gnu_get_libc_version", None)
            if gnu is None:
                _state = "system (not glibc)"
            else:
                ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
                _state = "heap" if ok else "system (mallopt refused)"
        except (OSError, AttributeError):
            _state = "system (no C library found)"
    return _state


def allocator_label() -> str:
    """What keep_freed_memory() did in this process ("system" when it was not called)."""
    return _state or "system"


class SlowStartNotice:
    """A line on stderr when what it wraps takes longer than `after` seconds: the first run on a machine compiles the
    CPU kernels (numba, cached on disk after), about half a minute in which nothing else shows.

        with SlowStartNotice():
            walker.start(image)
    """

    TEXT = ("worldwalk: starting the world (the first run on a machine compiles its CPU kernels, about half a minute; "
            "later runs start in a second)")

    def __init__(self, after: float = 3.0, text: str | None = None, stream=None):
        self.after, self.text, self.stream = float(after), text or self.TEXT, stream
        self.shown = False
        self._timer: threading.Timer | None = None

    def _show(self) -> None:
        self.shown = True
        print(self.text, file=self.stream or sys.stderr, flush=True)

    def __enter__(self) -> "SlowStartNotice":
        self._timer = threading.Timer(self.after, self._show)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._timer is not None:
            self._timer.cancel()
