"""Small helpers shared by the Triton launchers: is Triton usable, are we interpreting, buffer allocation.

Nothing here imports triton at module import time, so `import kernels` works without it (and without a GPU).
"""
from __future__ import annotations

import functools
import os

import torch


@functools.lru_cache(maxsize=None)
def triton_available() -> bool:
    """True when `import triton` succeeds (it may still need TRITON_INTERPRET=1 to run on a CPU)."""
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception:  # ImportError, or a broken install that fails while importing its driver
        return False
    return True


def interpreting() -> bool:
    """TRITON_INTERPRET=1: kernels run on the CPU through Triton's numpy interpreter (slow; for tests)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "yes", "on")


def poisoning() -> bool:
    """WORLDWALK_KERNELS_POISON=1: launchers fill every buffer they allocate with NaN (catches unwritten elements)."""
    return os.environ.get("WORLDWALK_KERNELS_POISON", "0").lower() in ("1", "true", "yes", "on")


def new_buffer(shape, dtype: torch.dtype, device) -> torch.Tensor:
    """torch.empty, or NaN-filled when poisoning (for float dtypes)."""
    if poisoning() and dtype.is_floating_point:
        return torch.full(tuple(shape), float("nan"), dtype=dtype, device=device)
    return torch.empty(tuple(shape), dtype=dtype, device=device)


def pow2_block(n: int, minimum: int = 16) -> int:
    """Smallest power of two >= max(n, minimum): Triton blocks are powers of two, tl.dot wants >= 16."""
    b = minimum
    while b < n:
        b *= 2
    return b


def dot_precision(dtype: torch.dtype, precision: str | None = None) -> str:
    """tl.dot input precision for float32 operands built from inputs of `dtype`.

    float32 inputs -> "tf32x3" (three TF32 products: float32-level error on tensor cores);
    bf16 / fp16 inputs -> "tf32" (the input rounding already dominates). `precision` overrides
    ("ieee": exact float32 FMAs, no tensor cores, slow).
    """
    if precision is not None:
        if precision not in ("tf32", "tf32x3", "ieee"):
            raise ValueError(f"precision {precision!r}: expected tf32, tf32x3 or ieee")
        return precision
    return "tf32x3" if dtype in (torch.float32, torch.float64) else "tf32"


def lowp_dot(dtype: torch.dtype) -> bool:
    """Feed bf16/fp16 operands straight to tl.dot (fast path on a GPU)? Never under the interpreter, whose bf16 dot
    is wrong (numpy has no bfloat16)."""
    return dtype in (torch.bfloat16, torch.float16) and not interpreting()


@functools.lru_cache(maxsize=None)
def cpu_info() -> tuple[str, frozenset[str]]:
    """(the CPU's model name, its flags) from /proc/cpuinfo's first processor; ("unknown CPU", empty) without one."""
    model, flags = "unknown CPU", frozenset()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown CPU":
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = frozenset(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return model, flags


@functools.lru_cache(maxsize=None)
def cpu_native_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (AVX-512 BF16 or AMX flags in /proc/cpuinfo) and PyTorch uses
    AVX-512 on it (not held to AVX2 by ATEN_CPU_CAPABILITY, or oneDNN by ONEDNN_MAX_CPU_ISA, to stand in for a
    smaller CPU). Elsewhere bfloat16 is emulated, about a hundred times slower than float32: never pick it there."""
    flags = cpu_info()[1]
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    held = isa not in ("ALL", "DEFAULT") and "BF16" not in isa and "AMX" not in isa
    return (bool(flags & {"avx512_bf16", "amx_bf16"}) and not held
            and torch.backends.cpu.get_cpu_capability().startswith("AVX512"))
