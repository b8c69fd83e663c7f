"""world.sheet: a start depth that follows the picture's texture, smoothed into one sheet.

    share = edge_share(z (H, W) metres, rel, inv)            # the share of its pixels on a depth edge
    z, share = smooth_sheet(z, far, rel, inv, limit=0.1)   # the same, smoothed where share > limit

The depth networks learn from procedural worlds, where a strong edge in the picture is nearly always a depth edge.
On a photograph their depth follows the picture's texture instead: a face, a cup's rim, a cat's fur become dozens of
surfaces metres apart. The memory does not lift pixels on a depth edge (memory.py), and walking in tears the
picture along every one of them; the model's blobs fill the tears, the lift keeps them, and within a second of
walking the picture has broken into blocks (benchmarks/RESULTS.md, "The photograph as one sheet").

How many of its pixels lie on a depth edge (the memory's own test: `MemoryConfig.edge`, `edge_inv`) tells the two
apart: 0.6-7.3 % of 160 procedural start views (the app's four scenes and the benchmarks' held-out ones among them),
16-46 % of photographs of things (a cup, a face, a cat, a motorcycle, coins; 8 % of a rocket on its pad, which
stays as predicted). Above `limit`, the depth's detail is the picture's texture, not its surfaces, and only its
broad shape is kept: the log depth of the pixels nearer than the far field is blurred (a Gaussian of `sigma` times
the frame's width, normalised over those pixels, so the sky neither bleeds into it nor moves). Walking in then
magnifies the picture whole, with the parallax of its broad shape, as a close-up's walk should look. The far field
stays as it was (world/far_field.py has put its edge where the picture's colours are).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from worldwalk.kernels.lift import depth_edges

__all__ = ["SIGMA", "edge_share", "smooth_sheet"]

SIGMA = 0.1  # the blur's standard deviation, as a share of the frame's width


def edge_share(z: torch.Tensor, rel: float, inv: float) -> float:
    """z (H, W) metres -> the share of its pixels on a depth edge (kernels/lift.depth_edges, the memory's test)."""
    return float(depth_edges(z, rel, inv).float().mean())


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """x (1, C, H, W) -> the same, each channel through a separable Gaussian of `sigma` pixels (edges replicated)."""
    C = x.shape[1]
    r = max(1, min(int(3 * sigma), min(x.shape[-2:]) - 1))  # replicate padding needs r < the side
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-t * t / (2 * sigma * sigma))
    k = (k / k.sum()).repeat(C, 1)  # (C, 2r + 1)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(C, 1, 1, -1), groups=C)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(C, 1, -1, 1), groups=C)


def smooth_sheet(z: torch.Tensor, far: float, rel: float, inv: float, limit: float = 0.1,
                 sigma: float = SIGMA) -> tuple[torch.Tensor, float]:
    """z (H, W) metres (inf or >= far: the far field); rel, inv: the memory's depth-edge test; limit: the share of
    edge pixels above which the depth is smoothed; sigma: the blur, as a share of the width.
    -> (z, or where its edge share exceeds `limit` its near pixels' log depth blurred; the edge share)"""
    share = edge_share(z, rel, inv)
    if share <= limit:
        return z, share
    near = torch.isfinite(z) & (z < far)
    if not bool(near.any()):
        return z, share
    m = near.float()
    log = torch.where(near, z, torch.ones_like(z)).float().log()
    num, den = _blur(torch.stack([log * m, m])[None], sigma * z.shape[-1])[0]  # one pass for both: (H, W) each
    smooth = (num / den.clamp_min(1e-6)).exp()
    return torch.where(near, smooth.to(z.dtype), z), share
