"""world/disocclusion.py: the holes a move opens behind an object take what lies behind it."""
import torch

from worldwalk.world.disocclusion import fill_behind

RED, BLUE = (1.0, -1.0, -1.0), (-1.0, -1.0, 1.0)


def view(H=12, W=40):
    """A far blue wall (50 m) with a near red pillar (5 m, columns 10-14) and the hole a move opened on its right
    (columns 15-19, unseen, depth inf as the memory's render gives it)."""
    rgb = torch.empty(1, 3, H, W)
    rgb[:] = torch.tensor(BLUE).view(1, 3, 1, 1)
    rgb[..., 10:15] = torch.tensor(RED).view(1, 3, 1, 1)
    z = torch.full((1, H, W), 50.0)
    z[..., 10:15] = 5.0
    seen = torch.ones(1, H, W, dtype=torch.bool)
    seen[..., 15:20] = False
    z[~seen] = torch.inf
    rgb[:, :, ~seen[0]] = 0.0
    return rgb, z, seen


def test_a_hole_beside_an_object_takes_the_far_side_colour():
    rgb, z, seen = view()
    before = rgb.clone()
    out, filled = fill_behind(rgb, z, seen, max_gap=8)
    assert torch.equal(filled, ~seen)
    assert torch.equal(out[0, :, ~seen[0]], torch.tensor(BLUE)[:, None].expand(3, int((~seen).sum())))
    assert torch.equal(out[:, :, seen[0]], rgb[:, :, seen[0]]) and torch.equal(rgb, before)  # a new tensor
    # down a column (the same picture turned by 90 degrees) nothing: the unseen run between the ground and the sky
    _, down = fill_behind(rgb.transpose(2, 3), z.transpose(1, 2), seen.transpose(1, 2), max_gap=8)
    assert not down.any()


def test_edges_cracks_and_wide_holes_stay_as_they_are():
    rgb, z, seen = view()
    assert not fill_behind(rgb, z, seen, max_gap=4)[1].any()  # 5 pixels wide: wider than max_gap
    crack = z.clone()
    crack[..., 10:15] = 52.0  # both ends at the same depth: a crack in one surface, not a hole behind an object
    assert not fill_behind(rgb, crack, seen, max_gap=8)[1].any()
    edge = seen.clone()
    edge[..., 30:] = False  # a run that reaches the frame's edge has one end only
    _, filled = fill_behind(rgb, torch.where(edge, z, torch.inf), edge, max_gap=16)
    assert filled[..., 15:20].all() and not filled[..., 30:].any()
    assert not fill_behind(rgb, z, torch.zeros_like(seen), max_gap=8)[1].any()  # nothing seen: nothing to fill from


def test_each_row_takes_its_own_far_side():
    """A hole with the far side on its right in the upper rows and on its left in the lower ones."""
    rgb, z, seen = view()
    z[..., 6:, 10:15] = 80.0  # the lower rows: the "pillar" is now the far side ...
    z[..., 6:, 20:] = 8.0  # ... and what lies right of the hole the near one
    out, filled = fill_behind(rgb, z, seen, max_gap=8)
    assert torch.equal(filled, ~seen)
    assert (out[0, :, :6, 15:20] == torch.tensor(BLUE).view(3, 1, 1)).all()
    assert (out[0, :, 6:, 15:20] == torch.tensor(RED).view(3, 1, 1)).all()
    assert torch.isfinite(out).all()
