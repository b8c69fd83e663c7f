"""Colour continuity where the frame leaves what the memory sees.

Where a turn or a step reveals something, the frame shows the decoder's drawing beside the memory's render of what
was seen before. The two seldom agree in colour: the drawing is a little brighter, greyer or warmer than the render
next to it, and the decoder's drawing of one place changes from frame to frame. The blend (world/session.py) feathers
the render into the drawing over a few pixels, but the difference stays on the drawing's side; and the lift adds what
each latent frame of a chunk shows for the first time, each in the tint of its own frame, so a turn leaves a row of
vertical bands in the memory, one per latent frame (looked at: benchmarks/RESULTS.md, "Seams").

So the drawing gets the memory's low-frequency colour, as a seamless paste does: the difference render - drawing is
taken where the memory sees whole cells (4 x 4 pixels for the frames shown, 2 x 2 for the one frame a lift adds),
clamped, carried into the cells it does not see by pull-push (a smooth membrane over the holes), faded out over
`reach` cells from the seen ones, and brought back up bilinearly. Only the low frequencies move; the drawing keeps
its own detail. The session does it twice: to the frames shown, against the memory as it was before the chunk; and
to each frame the lift adds, against the memory with what the chunk's earlier frames added.

    offset = seam_offset(frames (N, 3, H, W), rgb (N, 3, H, W) the memory's render, covered (N, H, W) bool)
    frames + offset                     # (None: nothing to carry, or nothing left to carry it into)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from worldwalk.kernels.splat import pull_push


def seam_offset(frames: torch.Tensor, rgb: torch.Tensor, covered: torch.Tensor, cell: int = 4,
                clamp: float = 0.25, reach: int = 8) -> torch.Tensor | None:
    """frames, rgb (N, 3, H, W) in [-1, 1]; covered (N, H, W) bool -> (N, 3, H, W) offset for frames (0 inside what
    the memory sees whole, the carried difference elsewhere), or None where no frame has both seen and unseen cells.
    cell: the cells' size in pixels; clamp: the largest offset of a channel (in [-1, 1] units)."""
    N, _, H, W = frames.shape
    share = F.avg_pool2d(covered[:, None].float(), cell, ceil_mode=True)  # (N, 1, h, w)
    whole = (share > 0.999).float()
    if not bool(((whole.amax((1, 2, 3)) > 0) & (whole.amin((1, 2, 3)) == 0)).any()):
        return None
    d = (F.avg_pool2d(rgb.float() - frames.float(), cell, ceil_mode=True) * whole).clamp(-clamp, clamp)
    d = pull_push(d.contiguous(), whole.contiguous())  # (a frame with no whole cell: zeros)
    # carried `reach` cells into the unseen, fading: 1 at the seam (half the window seen), 0 where none of it is
    near = F.avg_pool2d(whole, 2 * reach + 1, 1, reach, count_include_pad=False)
    d = d * (2 * near).clamp(max=1.0)
    return F.interpolate(d, size=(H, W), mode="bilinear", align_corners=False)
