"""controls.rays: properties of the ray geometry and agreement with the official camera packing."""
import numpy as np
import pytest
import torch
from controls_testutil import random_c2w

from worldwalk.controls import intrinsics as ki
from worldwalk.controls import rays, se3


def _t(x):
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def _path(F: int, seed: int = 0) -> np.ndarray:
    """A smooth walk (F, 4, 4) starting away from the identity, so relative_to_first has work to do."""
    t = np.linspace(0.0, 1.0, F)
    R = se3.rotation_from_angles(40 * t + 10, 15 * np.sin(3 * t), 5 * t)
    pos = np.stack([np.sin(2 * t), 0.2 * t, 1.5 * t], axis=-1) + np.array([1.0, -0.3, 2.0])
    return se3.make_pose(R, pos)


def test_torch_pose_helpers_match_numpy():
    c2w = random_c2w(9, seed=3)
    np.testing.assert_allclose(rays.invert_se3(_t(c2w)).numpy(), se3.invert(c2w), atol=1e-12)
    np.testing.assert_allclose(rays.relative_to_first(_t(c2w)[None])[0].numpy(), se3.relative_to_first(c2w), atol=1e-12)


def test_plucker_moments_are_orthogonal_to_unit_directions():
    c2w = _t(random_c2w(9, seed=1))[None]
    intr = _t(np.tile([5.0, 5.5, 3.7, 2.2], (9, 1)))[None]
    pl = rays.plucker_raymaps(c2w, intr, (5, 8), stride=4)  # (1, 24, T, 5, 8)
    assert pl.shape == (1, 24, 3, 5, 8)
    pl = pl.reshape(1, 4, 6, 3, 5, 8)
    d, m = pl[:, :, :3], pl[:, :, 3:]
    np.testing.assert_allclose(d.norm(dim=2).numpy(), 1.0, atol=1e-12)
    assert (d * m).sum(dim=2).abs().max().item() < 1e-12
    assert m.norm(dim=2).max().item() > 0.1  # the cameras are away from the origin: the moments are not trivial


def test_ucpe_ray_frames_are_rigid_and_point_along_the_rays():
    c2w = rays.relative_to_first(_t(_path(17))[None])
    intr = _t(np.tile([6.0, 6.0, 4.0, 3.0], (17, 1)))[None]
    cond = rays.camera_conditions(c2w, intr, stride=8)  # (1, 3, 20)
    P = rays.ucpe_ray_frames(cond, (6, 8))  # (1, 3, 6, 8, 4, 4)
    R = P[..., :3, :3]
    eye = torch.eye(3, dtype=R.dtype).expand_as(R)
    assert (R @ R.transpose(-1, -2) - eye).abs().max().item() < 1e-12
    assert (torch.linalg.det(R) - 1).abs().max().item() < 1e-12
    np.testing.assert_array_equal(P[..., 3, :].numpy(), np.broadcast_to([0.0, 0.0, 0.0, 1.0], P.shape[:-2] + (4,)))
    d, o = rays.pixel_rays(cond[..., :16].reshape(1, 3, 4, 4), cond[..., 16:], (6, 8))
    np.testing.assert_allclose(R[..., 2, :].numpy(), d.numpy(), atol=1e-12)  # ray z axis = ray direction
    # The camera centre maps to the ray frame's origin.
    o_h = torch.cat([o, torch.ones_like(o[..., :1])], dim=-1)[..., None]
    assert (P @ o_h)[..., :3, 0].abs().max().item() < 1e-12


def test_latent_grid_intrinsics_match_an_explicit_resize_and_crop_of_pixel_rays():
    # A 640x360 photo with its own camera, brought to a 256x192 model image, then to the 8x6 latent grid (factor 32).
    src_size, model_size, factor = (640, 360), (256, 192), 32
    src_intr = np.array([520.0, 515.0, 331.7, 172.4])
    c2w = random_c2w(1, seed=7)[0]

    # Explicit resize + centre crop, written out: the resized image is rw x rh, output pixel (u, v) of the crop
    # shows the source point ((u + left) * sw / rw, (v + top) * sh / rh) -- the convention of the official pipeline.
    scale = max(model_size[0] / src_size[0], model_size[1] / src_size[1])
    rw, rh = max(model_size[0], round(src_size[0] * scale)), max(model_size[1], round(src_size[1] * scale))
    left, top = (rw - model_size[0]) // 2, (rh - model_size[1]) // 2
    assert (rw, rh, left, top) == (341, 192, 42, 0)

    def source_rays(x, y):
        """World rays of the source camera at (possibly fractional) source pixel coordinates."""
        d = np.stack([(x - src_intr[2]) / src_intr[0], (y - src_intr[3]) / src_intr[1], np.ones_like(x)], axis=-1)
        d = d @ c2w[:3, :3].T
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    model_intr = ki.adjust_for_resize_crop(src_intr, src_size, model_size)
    v, u = np.mgrid[0:model_size[1], 0:model_size[0]].astype(np.float64)
    expected = source_rays((u + left) * src_size[0] / rw, (v + top) * src_size[1] / rh)
    got, _ = rays.pixel_rays(_t(c2w), _t(model_intr), (model_size[1], model_size[0]))
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)

    # The latent grid keeps every 32nd model pixel's ray (the VAE's block origin), as the official scaling implies.
    lat_intr = ki.to_latent_grid(model_intr, model_size, factor)
    lw, lh = ki.latent_grid_size(model_size, factor)
    got, _ = rays.pixel_rays(_t(c2w), _t(lat_intr), (lh, lw))
    np.testing.assert_allclose(got.numpy(), expected[::factor, ::factor], atol=1e-12)


@pytest.mark.parametrize("F", [17, 21, 1])
def test_camera_tensors_match_the_official_prepare_camera(F):
    cam_utils = pytest.importorskip("diffusers.pipelines.sana_wm.cam_utils")
    H, W = 128, 192
    c2w = _path(F)
    intr = np.tile([150.0, 148.0, 97.0, 61.0], (F, 1)) + np.linspace(0, 3, F)[:, None]
    ref = cam_utils.prepare_camera(c2w.astype(np.float32), intr.astype(np.float32), target_size=(H, W),
                                   vae_stride=(8, 32, 32))
    rel = rays.relative_to_first(_t(c2w)[None])
    lat = _t(ki.to_latent_grid(intr, (W, H), 32))[None]
    cond = rays.camera_conditions(rel, lat, stride=8)
    pl = rays.plucker_raymaps(rel, lat, (H // 32, W // 32), stride=8)
    np.testing.assert_allclose(cond[0].numpy(), ref["raymap"].double().numpy(), atol=2e-5)
    np.testing.assert_allclose(pl[0].numpy(), ref["chunk_plucker"].double().numpy(), atol=2e-5)
