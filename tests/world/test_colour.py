"""world.colour: the fit recovers a known map, a flat image gives a finite one, identity changes nothing.
(The session's use of it: tests/world/test_session.py.)"""
import pytest
import torch

from worldwalk.world.colour import apply_colour_map, fit_colour_map, identity_map


def test_fit_recovers_a_known_map(rms):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 37, 53, generator=g) * 1.6 - 0.8  # (3, H, W), odd size
    A = torch.tensor([[0.9, 0.1, 0.0], [0.05, 0.7, 0.1], [0.0, -0.1, 1.2], [0.1, -0.05, 0.02]])
    y = apply_colour_map(x[None, :, None], A)[0, :, 0]
    fit = fit_colour_map(x, y, ridge=0.0)
    assert rms(fit, A) < 1e-6
    assert fit_colour_map(x, y).shape == (4, 3)
    assert rms(fit_colour_map(x, y), A) < 0.02  # the default ridge stays close


def test_flat_image_gives_a_finite_map_near_identity():
    x = torch.full((3, 16, 16), 0.2)
    A = fit_colour_map(x, x)
    assert torch.isfinite(A).all()
    out = apply_colour_map(x[None, :, None], A)
    assert torch.allclose(out[0, :, 0], x, atol=1e-5)


def test_identity_changes_nothing():
    f = torch.rand(2, 3, 4, 5, 6) * 2 - 1
    assert torch.equal(apply_colour_map(f, identity_map()), f)


def test_fit_refuses_mismatched_frames():
    with pytest.raises(ValueError, match="colour map"):
        fit_colour_map(torch.zeros(3, 8, 8), torch.zeros(3, 8, 9))
