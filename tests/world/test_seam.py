"""world/seam.py: the memory's low-frequency colour carried into what the frame shows beside it. A drawing that is
brighter than the render next to it is brought to the render's level, smoothly, its detail kept; where the memory sees
whole cells nothing moves; frames with nothing seen, or nothing unseen, get nothing; a large difference is clamped."""
import torch

from worldwalk.world.seam import seam_offset


def test_a_brighter_drawing_meets_the_render_at_the_seam_and_keeps_its_detail():
    """At the seam the drawing comes down to the render's level; the offset fades out over `reach` cells (8 of 4
    pixels: 32 pixels), smoothly; beyond that the drawing is as it was; its texture is kept everywhere."""
    H, W = 64, 128
    g = torch.Generator().manual_seed(0)
    render = torch.full((1, 3, H, W), -0.2)
    covered = torch.zeros(1, H, W, dtype=torch.bool)
    covered[:, :, :40] = True  # the left part seen
    detail = 0.05 * torch.randn(1, 3, H, W, generator=g)
    drawing = -0.2 + 0.15 + detail  # 0.15 brighter everywhere, with its own texture
    offset = seam_offset(drawing, render * covered[:, None], covered)
    assert offset is not None and torch.isfinite(offset).all()
    profile = offset[0].mean((0, 1))  # per column
    assert (profile[40:44] + 0.15).abs().max() < 0.02  # at the seam: the whole difference
    assert profile[40 + 40:].abs().max() < 1e-6  # past the reach: nothing
    steps = profile[40:40 + 40].diff()
    assert (steps >= -1e-4).all() and steps.abs().max() < 0.02  # fading out, without a step of its own
    hp = lambda x: x - torch.nn.functional.avg_pool2d(x, 5, 1, 2, count_include_pad=False)  # noqa: E731
    out = drawing + offset
    assert torch.allclose(hp(out)[..., 8:-8, 48:-8], hp(drawing)[..., 8:-8, 48:-8], atol=2e-3)


def test_nothing_moves_where_seen_or_when_there_is_nothing_to_carry():
    H, W = 32, 32
    drawing = torch.rand(2, 3, H, W) * 2 - 1
    render = torch.rand(2, 3, H, W) * 2 - 1
    covered = torch.zeros(2, H, W, dtype=torch.bool)
    assert seam_offset(drawing, render, covered) is None  # nothing seen
    assert seam_offset(drawing, render, ~covered) is None  # nothing unseen
    covered[0, :, :16] = True  # frame 0 half seen, frame 1 not at all
    off = seam_offset(drawing, render * covered[:, None], covered)
    assert off.shape == drawing.shape and torch.isfinite(off).all()
    assert off[1].abs().max() == 0  # a frame with no whole seen cell
    assert off[0].abs().max() <= 0.25 + 1e-6  # clamped
    render[0] = drawing[0] + 1.0  # a far larger difference than the clamp
    off = seam_offset(drawing, render * covered[:, None], covered)
    assert torch.allclose(off[0, :, 4:-4, 20:-4], torch.full_like(off[0, :, 4:-4, 20:-4], 0.25), atol=1e-5)
