"""Rigid camera poses in numpy: building, checking, inverting and interpolating OpenCV camera-to-world matrices.

Convention everywhere in worldwalk (as the official SANA-WM release):
- a pose is a 4x4 float64 camera-to-world (c2w) matrix ``[[R, t], [0, 0, 0, 1]]``;
- camera axes are OpenCV: +X right, +Y down, +Z forward; units are metres;
- the world frame of a session is the first camera's frame, so world "up" is -Y and the first pose is the identity.

Rotations are built with ``scipy.spatial.transform.Rotation`` (and its ``Slerp``) so they are orthonormal to rounding.
The torch twins used on the model's hot path live in ``controls.rays``.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

#: World up in the session frame (OpenCV: +Y points down).
WORLD_UP = np.array([0.0, -1.0, 0.0])

#: Right-multiplying a c2w by this flips its Y and Z axes: OpenCV <-> OpenGL/nerfstudio camera axes (its own inverse).
_FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])


def make_pose(R: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
    """(..., 3, 3) rotations and (..., 3) translations -> (..., 4, 4) float64 c2w poses."""
    R = np.asarray(R, dtype=np.float64)
    out = np.zeros(R.shape[:-2] + (4, 4))
    out[..., :3, :3] = R
    if t is not None:
        out[..., :3, 3] = np.asarray(t, dtype=np.float64)
    out[..., 3, 3] = 1.0
    return out


def rotation_from_angles(yaw_deg, pitch_deg=0.0, roll_deg=0.0) -> np.ndarray:
    """Camera orientation from yaw, pitch and roll in degrees (scalars or arrays of one shape) -> (..., 3, 3).

    R = R_yaw @ R_pitch @ R_roll: yaw turns about world up (positive turns right), pitch about the camera's X axis
    (positive looks up), roll about the camera's Z axis (positive tilts the camera clockwise as seen from behind: its
    right side goes down).
    In OpenCV axes "turn right" is a positive rotation about +Y and "look up" a positive rotation about +X.
    """
    yaw, pitch, roll = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (yaw_deg, pitch_deg, roll_deg)))
    angles = np.stack([yaw.ravel(), pitch.ravel(), roll.ravel()], axis=-1)
    # Intrinsic rotations "YXZ": first about Y, then about the new X, then the new Z = Ry @ Rx @ Rz.
    R = Rotation.from_euler("YXZ", angles, degrees=True).as_matrix()
    return R.reshape(yaw.shape + (3, 3))


def angles_from_rotation(R: np.ndarray) -> np.ndarray:
    """Inverse of ``rotation_from_angles``: (..., 3, 3) -> (..., 3) [yaw, pitch, roll] in degrees."""
    R = np.asarray(R, dtype=np.float64)
    return Rotation.from_matrix(R.reshape(-1, 3, 3)).as_euler("YXZ", degrees=True).reshape(R.shape[:-2] + (3,))


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = WORLD_UP) -> np.ndarray:
    """c2w (4, 4) of a camera at ``eye`` whose +Z looks at ``target``, its "up" (-Y) as close to ``up`` as possible."""
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    z /= np.linalg.norm(z)
    x = np.cross(-np.asarray(up, dtype=np.float64), z)  # right = down x forward
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return make_pose(np.stack([x, y, z], axis=-1), eye)


def invert(c2w: np.ndarray) -> np.ndarray:
    """Closed-form inverse of rigid (..., 4, 4) transforms (c2w -> w2c and back)."""
    c2w = np.asarray(c2w, dtype=np.float64)
    R_t = np.swapaxes(c2w[..., :3, :3], -1, -2)
    return make_pose(R_t, -(R_t @ c2w[..., :3, 3:4])[..., 0])


def relative_to_first(c2w: np.ndarray) -> np.ndarray:
    """(F, 4, 4) -> the same poses in the frame of pose 0 (``inv(c2w[0]) @ c2w[t]``; pose 0 is exactly the identity)."""
    c2w = np.asarray(c2w, dtype=np.float64)
    rel = invert(c2w[0]) @ c2w
    rel[0] = np.eye(4)
    return rel


def opencv_to_opengl(c2w: np.ndarray) -> np.ndarray:
    """Flip the camera's Y and Z axes (c2w columns 1 and 2): OpenCV <-> OpenGL/nerfstudio. Its own inverse."""
    return np.asarray(c2w, dtype=np.float64) @ _FLIP_YZ


opengl_to_opencv = opencv_to_opengl


def rigidity_problem(c2w: np.ndarray, atol: float = 1e-4) -> str | None:
    """Why a stack of poses (F, 4, 4) is not a stack of rigid transforms, or None when it is.

    Checks shape, finiteness, the bottom row [0, 0, 0, 1], R^T R = I and det R = +1 within ``atol``. The message names
    the first bad pose, e.g. "pose 3: rotation block is not orthonormal (max |R^T R - I| = 0.21)".
    """
    c2w = np.asarray(c2w)
    if c2w.ndim != 3 or c2w.shape[1:] != (4, 4):
        return f"poses have shape {c2w.shape}"
    if not np.issubdtype(c2w.dtype, np.number):
        return f"poses have dtype {c2w.dtype}"
    c2w = c2w.astype(np.float64)
    finite = np.isfinite(c2w).all(axis=(1, 2))
    if not finite.all():
        return f"pose {int(np.argmin(finite))} contains NaN or infinity"
    bottom = np.abs(c2w[:, 3] - np.array([0.0, 0.0, 0.0, 1.0])).max(axis=1)
    if (bottom > atol).any():
        i = int(np.argmax(bottom > atol))
        return f"pose {i}: bottom row is {c2w[i, 3].tolist()}, not [0, 0, 0, 1]"
    R = c2w[:, :3, :3]
    ortho = np.abs(np.swapaxes(R, 1, 2) @ R - np.eye(3)).max(axis=(1, 2))
    if (ortho > atol).any():
        i = int(np.argmax(ortho > atol))
        return f"pose {i}: rotation block is not orthonormal (max |R^T R - I| = {ortho[i]:.3g})"
    det = np.linalg.det(R)
    if (det < 0).any():
        return f"pose {int(np.argmax(det < 0))}: rotation block has determinant {det[det < 0][0]:.3g} (a reflection)"
    return None


def is_rigid(c2w: np.ndarray, atol: float = 1e-4) -> bool:
    """True when ``c2w`` is an (F, 4, 4) stack of finite rigid transforms (see ``rigidity_problem``)."""
    return rigidity_problem(c2w, atol) is None


def orthonormalize(c2w: np.ndarray) -> np.ndarray:
    """Project the rotation blocks of (..., 4, 4) nearly-rigid poses onto SO(3) (nearest in Frobenius norm, via SVD).

    Use on poses that passed ``rigidity_problem`` (e.g. float32 files) so every rotation handed on is exact to rounding.
    """
    c2w = np.asarray(c2w, dtype=np.float64)
    U, _, Vt = np.linalg.svd(c2w[..., :3, :3])
    R = U @ Vt
    # Guard against a reflection creeping in through a degenerate input (cannot happen for det > 0 inputs).
    flip = np.linalg.det(R) < 0
    if flip.any():
        U[flip, :, -1] *= -1
        R = U @ Vt
    return make_pose(R, c2w[..., :3, 3])


def interpolate(c2w: np.ndarray, times: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Resample a pose path: rotations by slerp, translations by linear interpolation.

    c2w (F, 4, 4) at increasing ``times`` (F,) -> poses (Q, 4, 4) at ``query`` (Q,), clamped to [times[0], times[-1]].
    A single pose (F == 1) is repeated.
    """
    c2w = np.asarray(c2w, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    query = np.clip(np.asarray(query, dtype=np.float64), times[0], times[-1])
    if c2w.shape[0] == 1:
        return np.repeat(c2w, query.shape[0], axis=0)
    if np.any(np.diff(times) <= 0):
        raise ValueError("interpolate: times must be strictly increasing")
    R = Slerp(times, Rotation.from_matrix(c2w[:, :3, :3]))(query).as_matrix()
    t = np.stack([np.interp(query, times, c2w[:, i, 3]) for i in range(3)], axis=-1)
    out = make_pose(R, t)
    # Hit the input poses exactly where the query lands on a knot (slerp leaves ~1e-16 residue).
    knot = np.searchsorted(times, query)
    exact = (knot < len(times)) & (times[np.minimum(knot, len(times) - 1)] == query)
    out[exact] = c2w[knot[exact]]
    return out


def interpolate_pair(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """The pose a fraction ``alpha`` in [0, 1] of the way from pose ``a`` (4, 4) to pose ``b`` (4, 4)."""
    return interpolate(np.stack([a, b]), np.array([0.0, 1.0]), np.array([float(alpha)]))[0]


def resample(c2w: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Poses sampled at ``fps_in`` (F, 4, 4) -> the same motion at ``fps_out``: (G, 4, 4), same start, no extrapolation.

    G = floor((F - 1) * fps_out / fps_in) + 1 frames at times k / fps_out.
    """
    F = c2w.shape[0]
    duration = (F - 1) / fps_in
    G = int(np.floor(duration * fps_out + 1e-9)) + 1
    return interpolate(c2w, np.arange(F) / fps_in, np.arange(G) / fps_out)
