"""The k x k median filter on the CPU, compiled with numba: the same result as kernels/median/naive.py.

Each output row gathers its k² neighbourhood rows (edges replicated) into k² wires of W values and runs a sorting
network over them, one compare-exchange (a min and a max) at a time over the whole row, which the compiler turns into
vector instructions; only the exchanges the middle wire depends on are kept (Batcher's odd-even merge sort, pruned
backwards from the median). A sorting network gives every wire the value a sort would, so the median is exact, ties
and all. Compiled on first use and cached on disk by numba.
"""
from __future__ import annotations

import functools

import numba as nb
import numpy as np
import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=None)
def median_network(n: int) -> np.ndarray:
    """(P, 2) int64 wire pairs (lo, hi), lo < hi: the compare-exchanges of Batcher's odd-even merge sort of n wires
    (padded to a power of two with +inf) that the middle wire, n // 2, depends on, in order. An exchange that touches
    a pad wire is left out: a pad always holds +inf and its exchanges change nothing."""
    size = 1
    while size < n:
        size *= 2
    pairs = []
    p = 1
    while p < size:  # Knuth's formulation of the odd-even merge sort
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    a, b = i + j, i + j + k
                    if (a // (2 * p)) == (b // (2 * p)):
                        pairs.append((a, b))
            k //= 2
        p *= 2
    need, kept = {n // 2}, []
    for a, b in reversed(pairs):  # backwards: an exchange matters if it writes a wire a later kept one reads
        if (a in need or b in need) and b < n:
            kept.append((a, b))
            need |= {a, b}
    return np.asarray(kept[::-1], dtype=np.int64).reshape(-1, 2)


@nb.njit(parallel=True, cache=True, error_model="numpy")
def _median(xp, k, pairs, out):  # pragma: no cover - compiled
    N, H, W = out.shape
    kk = k * k
    wires = 1
    while wires < kk:
        wires *= 2
    for row in nb.prange(N * H):
        n, i = row // H, row % H
        buf = np.empty((wires, W), np.float32)
        for a in range(k):
            for b in range(k):
                for j in range(W):
                    buf[a * k + b, j] = xp[n, i + a, j + b]
        for e in range(kk, wires):
            for j in range(W):
                buf[e, j] = np.inf
        for p in range(pairs.shape[0]):
            lo, hi = buf[pairs[p, 0]], buf[pairs[p, 1]]
            for j in range(W):
                x, y = lo[j], hi[j]
                lo[j], hi[j] = min(x, y), max(x, y)
        for j in range(W):
            out[n, i, j] = buf[kk // 2, j]


def median_cpu(x: torch.Tensor, k: int) -> torch.Tensor:
    """The same call and result as naive.median_ref for a CPU float32 x (N, 1, H, W) without NaN."""
    r = k // 2
    N, _, H, W = x.shape
    xp = np.ascontiguousarray(F.pad(x.float(), (r, r, r, r), mode="replicate")[:, 0].numpy())
    out = np.empty((N, H, W), np.float32)
    _median(xp, k, median_network(k * k), out)
    return torch.from_numpy(out)[:, None]
