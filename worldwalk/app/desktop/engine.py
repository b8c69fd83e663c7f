"""The explorer's thin layer over world.Session and app.walker.Walker: what the window needs to show, nothing more.

- `DesktopSession` remembers the last frame it produced (start, step, restore), and every snapshot carries the frame it
  was taken at, so after a rewind or a load the window shows where the walk stands before the next chunk arrives.
- `DesktopWalker` notes when each chunk took its input (for the HUD's input-to-display latency) and can adopt a saved
  walk (snapshot + rig + path) through the Walker's own bookmark/rewind machinery.
"""
from __future__ import annotations

import time

import numpy as np

from worldwalk.app.walker import Bookmark, Walker
from worldwalk.world.session import Session, Snapshot


class DesktopSession(Session):
    last_frame: np.ndarray | None = None  # (H, W, 3) uint8: the newest frame of the walk (the one steps go on from)

    def start(self, image, *a, **k) -> np.ndarray:
        first = super().start(image, *a, **k)
        self.last_frame = first[-1]
        return first

    def step(self, poses) -> np.ndarray:
        frames = super().step(poses)
        self.last_frame = frames[-1]
        return frames

    def snapshot(self) -> Snapshot:
        snap = super().snapshot()
        snap.last_frame = self.last_frame  # shown again at a rewind to this snapshot
        return snap

    def restore(self, snap: Snapshot) -> None:
        super().restore(snap)
        self.last_frame = getattr(snap, "last_frame", None)


class DesktopWalker(Walker):
    """A Walker that tells when each chunk took its input (taken[(generation, chunk index)] = (monotonic s, input seq))
    and counts the requests it has carried out (`message_seq`: the same message twice is still news)."""

    def __init__(self, session: DesktopSession, **kw):
        super().__init__(session, **kw)
        self.input_seq = 0  # the front end bumps this after every set_input that changed what is held
        self.taken: dict[tuple[int, int], tuple[float, int]] = {}
        self.message_seq = 0  # bumps each time a request has been carried out (and `message` says how it went)

    def _do(self, name, args):
        try:
            super()._do(name, args)
        finally:
            self.message_seq += 1

    def _take_input(self):
        inp = super()._take_input()
        self.taken[(self.generation, self.session.chunk_index)] = (time.monotonic(), self.input_seq)
        if len(self.taken) > 64:
            for key in list(self.taken)[:-32]:
                self.taken.pop(key, None)
        return inp

    def adopt(self, snap: Snapshot, rig, path: list, image=None, seed: int = 0) -> None:
        """Continue a saved walk: the session restored to `snap`, the rig and map path as saved. Blocks until done.

        A snapshot of another model raises ValueError and leaves a walk in progress as it was. The saved moment becomes
        bookmark 1, so Backspace comes back to it. The walk is left paused.
        """
        with self._lock:  # the worker is between chunks while this is held
            fresh = self._thread is None
            if fresh:  # the worker starts here; it waits on the lock until the rewind below is queued
                placeholder = getattr(snap, "last_frame", None)
                if placeholder is None:
                    W, H = self.session.size_wh
                    placeholder = np.full((H, W, 3), 96, np.uint8)
                self.start(placeholder, seed=seed)
            self.session.restore(snap)  # ValueError here leaves the session (and a walk going on) as it was
            self.pause()
            self._record_stop()  # a recording of the walk before ends here
            clone = Snapshot({k: v.clone() for k, v in snap.tensors.items()}, dict(snap.meta))
            clone.last_frame = getattr(snap, "last_frame", None)
            self.bookmarks[:] = [Bookmark(clone, rig, list(path), self.session.frame_index)]
            self.image = image
            self.rewind()  # carried out by the worker: rig, path and a new generation, exactly as a rewind
        if not self.sync(timeout=120):
            raise ValueError("walk file: the generator did not take the saved walk in time")
