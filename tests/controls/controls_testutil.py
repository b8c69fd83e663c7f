"""Helpers shared by the controls tests: random rigid poses and a rotation checker."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from worldwalk.controls.se3 import make_pose


def random_c2w(n: int, seed: int = 0, scale: float = 3.0) -> np.ndarray:
    """(n, 4, 4) random rigid OpenCV c2w poses."""
    rng = np.random.default_rng(seed)
    R = Rotation.random(n, random_state=seed).as_matrix()
    return make_pose(R, rng.normal(scale=scale, size=(n, 3)))


def assert_rotations_valid(c2w: np.ndarray, atol: float = 1e-9) -> None:
    """Every rotation block orthonormal with determinant +1, bottom rows [0, 0, 0, 1]."""
    c2w = np.asarray(c2w, dtype=np.float64).reshape(-1, 4, 4)
    R = c2w[:, :3, :3]
    np.testing.assert_allclose(np.swapaxes(R, 1, 2) @ R, np.broadcast_to(np.eye(3), R.shape), atol=atol)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=atol)
    np.testing.assert_array_equal(c2w[:, 3], np.broadcast_to([0.0, 0.0, 0.0, 1.0], (len(c2w), 4)))
