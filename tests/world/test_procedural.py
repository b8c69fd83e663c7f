"""Procedural worlds: deterministic scenes, an exact renderer, human-like walks."""
import numpy as np

from worldwalk.controls.intrinsics import from_fov
from worldwalk.controls.se3 import rigidity_problem
from worldwalk.world.procedural.scene import EYE_HEIGHT, Scene
from worldwalk.world.procedural.walks import random_walk

SIZE = (64, 48)
K = from_fov(*SIZE, 60.0)


def test_scene_is_deterministic_and_seeded():
    c2w = np.eye(4)[None]
    a = Scene(3).render(c2w, K, SIZE)
    b = Scene(3).render(c2w, K, SIZE)
    c = Scene(4).render(c2w, K, SIZE)
    assert a.shape == (1, 48, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_rich_textures_change_the_pictures_not_the_world():
    """textures="rich" (depth training): the same geometry, so the same exact depth, with pictures on the surfaces;
    the plain scene of the seed is unchanged by it."""
    import pytest

    c2w = np.eye(4)[None]
    plain, zp = Scene(7).render(c2w, K, SIZE, depth=True)
    rich, zr = Scene(7, textures="rich").render(c2w, K, SIZE, depth=True)
    assert np.array_equal(zp, zr) and not np.array_equal(plain, rich)
    assert np.array_equal(plain, Scene(7).render(c2w, K, SIZE))
    with pytest.raises(ValueError, match="textures 'photos'"):
        Scene(7, textures="photos")


def test_sky_above_ground_below():
    s = Scene(0, n_objects=0)
    f = s.render(np.eye(4)[None], K, SIZE)[0].astype(float)
    top, bottom = f[:5].mean((0, 1)), f[-5:].mean((0, 1))
    assert top[2] > top[0]  # bluish sky
    assert np.abs(top - bottom).sum() > 30  # the ground looks different


def test_object_appears_where_it_is_projected():
    """A box placed on the optical axis, 6 m ahead, covers the image centre; moving the camera sideways by 3 m
    takes it out of the centre (exact geometry, not a learned guess)."""
    s = Scene(1, n_objects=0)
    import torch
    s.prims.boxes = torch.tensor([[0.0, EYE_HEIGHT - 1.0, 6.0, 0.5, 1.0, 0.5, 0.0, 0.0]])
    s.materials = [(np.array([1.0, 0.0, 0.0]), 4, 1.0)]
    empty = Scene(1, n_objects=0).render(np.eye(4)[None], K, SIZE)[0]
    with_box = s.render(np.eye(4)[None], K, SIZE)[0]
    cy, cx = 24, 32
    assert np.abs(with_box[cy, cx].astype(int) - empty[cy, cx]).sum() > 40
    side = np.eye(4)
    side[0, 3] = 3.0
    moved = s.render(side[None], K, SIZE)[0]
    assert np.abs(moved[cy, cx].astype(int) - empty[cy, cx]).sum() < 25


def test_random_walks_are_rigid_and_start_at_identity():
    rng = np.random.default_rng(0)
    for _ in range(5):
        c2w = random_walk(40, rng)
        assert c2w.shape == (40, 4, 4)
        assert np.allclose(c2w[0], np.eye(4))
        assert rigidity_problem(c2w) is None
        step = np.linalg.norm(np.diff(c2w[:, :3, 3], axis=0), axis=1)
        assert step.max() < 0.5  # at most sprinting speed per frame at 16 fps


def test_come_back_walks_return():
    rng = np.random.default_rng(1)
    c2w = random_walk(33, rng, come_back_p=1.0)
    np.testing.assert_allclose(c2w[-1], c2w[0], atol=1e-9)
