"""controls: from what a person does to the camera poses the world model is conditioned on.

- ``controls.se3``         rigid OpenCV c2w poses: build, check, invert, slerp/lerp resampling (numpy)
- ``controls.intrinsics``  [fx, fy, cx, cy]: default camera, resize + centre-crop, latent grid (numpy)
- ``controls.rig``         InputState -> smoothed metric velocities -> per-frame poses (Rig.update / plan_chunk)
- ``controls.actions``     the official "w-30,jw-10" action strings
- ``controls.formats``     file formats (worldwalk JSON, transforms.json, RealEstate10K, npz/npy)
- ``controls.trajectory``  Trajectory, load_trajectory / save_trajectory, TrajectoryError
- ``controls.builtin``     the built-in trajectories in assets/trajectories
- ``controls.rays``        torch ray geometry for the model (imported on its own: it pulls in torch)
"""
from worldwalk.controls.actions import actions_to_c2w, parse_actions
from worldwalk.controls.rig import InputState, Rig, RigConfig
from worldwalk.controls.trajectory import Trajectory, TrajectoryError, load_trajectory, save_trajectory, trajectory_from_actions

__all__ = [
    "InputState", "Rig", "RigConfig", "Trajectory", "TrajectoryError", "load_trajectory", "save_trajectory",
    "trajectory_from_actions", "actions_to_c2w", "parse_actions",
]
