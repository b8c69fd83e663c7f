"""The camera rig: what a person holds (keys, mouse, sticks) -> smoothed metric velocities -> OpenCV c2w poses.

Frames and units
- The session's world frame is the first camera's frame (OpenCV: +X right, +Y down, +Z forward, metres), so the rig
  starts at the identity and world up is -Y.
- Orientation is yaw (about world up, positive turns right), pitch (about the camera X axis, positive looks up, clamped
  to +-``pitch_limit``) and roll (about the camera Z axis): R = R_yaw @ R_pitch @ R_roll
  (see ``se3.rotation_from_angles``).
- Linear velocity is in the body frame, m/s: x right, y down, z forward. When walking (the default) the body frame is
  the heading frame (yaw only): W/S move along the camera's forward direction projected onto the ground, A/D strafe,
  Q/E go down/up along world up. With ``fly=True`` the body frame is the full camera frame (W moves where you look).
- Angular velocity is [yaw, pitch, roll] rates in deg/s.

Smoothing and frame-rate independence
Held keys and sticks set a *target* velocity; the actual velocity approaches it exponentially (time constant
``accel_time`` while a component is driven, ``damping_time`` once released), integrated in closed form. Mouse deltas are
added to a pending look offset that is applied exponentially (time constant ``mouse_time``), so the total turn equals
pixels x sensitivity whatever the update rate. Position is integrated over fixed-size sub-steps (<= ``max_substep``)
with the closed-form velocity integral (plus Simpson's rule for the part due to turning), so one second of the same
input moves the same distance at 8, 16 or 60 updates per second (to ~1e-15 m when not turning, ~1e-10 m while turning).

Two ways to drive it
- live: ``rig.update(input, dt)`` every display tick; ``rig.pose`` is the camera now.
- chunk-synchronous (the world model): ``rig.update(input, 0.0)`` to register the latest input without moving, then at
  each chunk ``poses = rig.plan_chunk(n)`` (pure) and ``rig.advance(n)`` once those frames are committed (the rig then
  sits exactly at ``poses[-1]``). ``advance`` also returns the poses, so ``poses = rig.advance(n)`` does both.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from worldwalk.controls.se3 import angles_from_rotation, make_pose

_DEFAULT_KEYMAP: dict[str, tuple[str, ...]] = {
    "forward": ("w",),
    "back": ("s",),
    "left": ("a",),
    "right": ("d",),
    "down": ("q",),
    "up": ("e",),
    "yaw_left": ("left",),
    "yaw_right": ("right",),
    "pitch_up": ("up",),
    "pitch_down": ("down",),
    "roll_left": ("z",),
    "roll_right": ("c",),
    "sprint": ("shift",),
}


@dataclass(frozen=True)
class InputState:
    """What is held during one update.

    keys:       names of held keys, case-insensitive ("w", "a", "s", "d", "q", "e", "shift", "left", "right", "up",
                "down", "z", "c" by default; see ``RigConfig.keymap``)
    mouse_dx:   mouse motion since the previous update, pixels, + = right (turns right)
    mouse_dy:   mouse motion since the previous update, pixels, + = down (looks down unless ``invert_mouse_y``)
    move_axes:  gamepad left stick (x: strafe right, y: forward), each in [-1, 1]
    look_axes:  gamepad right stick (x: yaw right, y: pitch up), each in [-1, 1]
    lift_axis:  gamepad triggers, + = up, in [-1, 1]
    """

    keys: frozenset[str] = frozenset()
    mouse_dx: float = 0.0
    mouse_dy: float = 0.0
    move_axes: tuple[float, float] = (0.0, 0.0)
    look_axes: tuple[float, float] = (0.0, 0.0)
    lift_axis: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "keys", frozenset(str(k).lower() for k in self.keys))
        clip = lambda a: float(min(1.0, max(-1.0, a)))  # noqa: E731
        object.__setattr__(self, "move_axes", tuple(clip(a) for a in self.move_axes))
        object.__setattr__(self, "look_axes", tuple(clip(a) for a in self.look_axes))
        object.__setattr__(self, "lift_axis", clip(self.lift_axis))

    def held(self) -> "InputState":
        """The same keys and sticks with no mouse motion: what "keep holding this" means when extrapolating."""
        return InputState(self.keys, 0.0, 0.0, self.move_axes, self.look_axes, self.lift_axis)


@dataclass
class RigConfig:
    """Feel of the rig. Speeds in m/s, rates in deg/s, times in seconds."""

    walk_speed: float = 1.2  # W/S, A/D, Q/E at full input
    sprint_multiplier: float = 2.5  # while "sprint" is held
    min_speed: float = 0.1  # bounds for speed_up / speed_down
    max_speed: float = 20.0
    speed_step: float = 1.25  # factor per speed_up / speed_down
    ahead_time: float = 4.0  # seconds: a walk starts no faster than reaches what lies ahead of the start picture in
    # this long (fit_speed: a close-up is walked slowly, open ground at walk_speed; 0: always walk_speed)
    turn_rate: float = 60.0  # arrows / full stick, yaw and pitch
    roll_rate: float = 45.0
    mouse_sensitivity: float = 0.1  # degrees per pixel
    invert_mouse_y: bool = False
    pitch_limit: float = 85.0
    accel_time: float = 0.15  # velocity time constant while driven
    damping_time: float = 0.12  # velocity time constant once released
    turn_time: float = 0.08  # angular-rate time constant
    mouse_time: float = 0.05  # how fast a mouse delta is applied (0: at once)
    fly: bool = False  # translate in the full camera frame instead of the heading frame
    fps: float = 16.0  # default frame rate of plan_chunk / advance
    max_substep: float = 1.0 / 120.0
    keymap: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(_DEFAULT_KEYMAP))


@dataclass
class _State:
    pos: np.ndarray  # (3,) world position, m
    angles: np.ndarray  # (3,) yaw, pitch, roll, deg
    vel: np.ndarray  # (3,) body-frame linear velocity, m/s
    rate: np.ndarray  # (3,) yaw, pitch, roll rates from keys/sticks, deg/s
    pending: np.ndarray  # (2,) mouse yaw, pitch not applied yet, deg


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R_y(yaw) @ R_x(pitch) @ R_z(roll), angles in degrees: a fast scalar twin of ``se3.rotation_from_angles``."""
    cy, sy = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
    cp, sp = math.cos(math.radians(pitch)), math.sin(math.radians(pitch))
    cr, sr = math.cos(math.radians(roll)), math.sin(math.radians(roll))
    Ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    Rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    Rz = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return Ry @ Rx @ Rz


def _approach(x0: np.ndarray, target: np.ndarray, tau: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact solution of dx/dt = (target - x) / tau over time h: (x(h), integral of x over [0, h]). tau = 0: a jump."""
    safe = np.where(tau > 0, tau, 1.0)
    decay = np.where(tau > 0, np.exp(-h / safe), 0.0)
    x_h = target + (x0 - target) * decay
    integral = target * h + (x0 - target) * np.where(tau > 0, safe * (1.0 - decay), 0.0)
    return x_h, integral


class Rig:
    """A first-person camera driven by ``InputState``s. See the module docstring for frames, units and usage."""

    def __init__(self, config: RigConfig | None = None, pose: np.ndarray | None = None):
        self.config = config or RigConfig()
        self._speed = self.config.walk_speed
        self._held = InputState()
        self.reset(pose)

    # ----------------------------------------------------------------------------------------------------- state
    def reset(self, pose: np.ndarray | None = None) -> None:
        """Stand still at ``pose`` (4, 4) c2w, default the identity; forgets velocities and pending mouse motion."""
        self._s = _State(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(2))
        if pose is not None:
            self.set_pose(pose)

    def set_pose(self, pose: np.ndarray) -> None:
        """Move the rig to ``pose`` (4, 4) c2w, keeping its velocities (e.g. to go on from the last committed frame)."""
        pose = np.asarray(pose, dtype=np.float64)
        self._s.pos = pose[:3, 3].copy()
        self._s.angles = angles_from_rotation(pose[:3, :3])

    @property
    def pose(self) -> np.ndarray:
        """(4, 4) float64 OpenCV c2w of the camera now."""
        return make_pose(_rotation(*self._s.angles), self._s.pos)

    @property
    def angles(self) -> np.ndarray:
        """(3,) [yaw, pitch, roll] in degrees."""
        return self._s.angles.copy()

    @property
    def linear_velocity(self) -> np.ndarray:
        """(3,) body-frame velocity in m/s (x right, y down, z forward; heading frame unless ``fly``)."""
        return self._s.vel.copy()

    @property
    def angular_velocity(self) -> np.ndarray:
        """(3,) [yaw, pitch, roll] rates in deg/s, including the mouse motion being applied right now."""
        mouse = np.zeros(3)
        if self.config.mouse_time > 0:
            mouse[:2] = self._s.pending / self.config.mouse_time
        return self._s.rate + mouse

    @property
    def speed(self) -> float:
        """Walking speed at full input, m/s (before sprint)."""
        return self._speed

    def speed_up(self) -> float:
        """Multiply the walking speed by ``speed_step`` (up to ``max_speed``); returns the new speed."""
        self._speed = min(self.config.max_speed, self._speed * self.config.speed_step)
        return self._speed

    def speed_down(self) -> float:
        """Divide the walking speed by ``speed_step`` (down to ``min_speed``); returns the new speed."""
        self._speed = max(self.config.min_speed, self._speed / self.config.speed_step)
        return self._speed

    def fit_speed(self, ahead: float | None) -> float:
        """Set the walking speed for a start picture whose surface straight ahead is ``ahead`` metres away (e.g.
        ``Session.depth_ahead()``): ``walk_speed``, or slower where walking at it would reach that surface in under
        ``ahead_time`` seconds (never below ``min_speed``). None or NaN (not known), or ``ahead_time`` 0:
        ``walk_speed``. Returns it."""
        cfg = self.config
        self._speed = cfg.walk_speed
        if ahead is not None and not math.isnan(ahead) and cfg.ahead_time > 0:
            ahead = float(ahead)
            if ahead < 0:
                raise ValueError(f"fit_speed: ahead {ahead}; expected a distance in metres (>= 0)")
            self._speed = min(cfg.walk_speed, max(cfg.min_speed, ahead / cfg.ahead_time))
        return self._speed

    # ------------------------------------------------------------------------------------------------ stepping
    def update(self, inp: InputState, dt: float) -> np.ndarray:
        """Hold ``inp`` for ``dt`` seconds (dt = 0 registers the input without moving); returns the new pose (4, 4).

        The mouse deltas in ``inp`` are the motion since the previous update; keys and sticks are held from now on
        (``plan_chunk`` and ``advance`` keep holding them).
        """
        if not dt >= 0:
            raise ValueError(f"dt must be >= 0 seconds, got {dt}")
        cfg = self.config
        sign_y = 1.0 if cfg.invert_mouse_y else -1.0
        self._s.pending = self._s.pending + cfg.mouse_sensitivity * np.array([inp.mouse_dx, sign_y * inp.mouse_dy])
        self._held = inp.held()
        if dt > 0:
            self._advance_time(dt)
        return self.pose

    def advance(self, n_frames: int, fps: float | None = None) -> np.ndarray:
        """Keep holding the current input for ``n_frames`` frames at ``fps``; returns their poses (n_frames, 4, 4).

        After the call the rig sits exactly at the last returned pose.
        """
        fps = fps or self.config.fps
        out = np.empty((n_frames, 4, 4))
        for k in range(n_frames):
            self._advance_time(1.0 / fps)
            out[k] = self.pose
        return out

    def plan_chunk(self, n_frames: int, fps: float | None = None, include_current: bool = False) -> np.ndarray:
        """Poses of the next ``n_frames`` raw frames if the current input stays held; does not move the rig.

        Frame k (1-based) is 1/fps * k seconds ahead. With ``include_current`` the current pose comes first and only
        n_frames - 1 future frames follow (for the first chunk, whose frame 0 is the start image).
        Returns (n_frames, 4, 4) float64 OpenCV c2w in the session frame.
        """
        ghost = copy.deepcopy(self)
        if include_current:
            return np.concatenate([self.pose[None], ghost.advance(n_frames - 1, fps)], axis=0)
        return ghost.advance(n_frames, fps)

    # ----------------------------------------------------------------------------------------------- internals
    def _targets(self) -> tuple[np.ndarray, np.ndarray]:
        """Target body velocity (3,) m/s and target key/stick rates (3,) deg/s for the held input."""
        cfg, inp = self.config, self._held
        held = lambda action: any(k in inp.keys for k in cfg.keymap.get(action, ()))  # noqa: E731
        axis = lambda pos, neg: float(held(pos)) - float(held(neg))  # noqa: E731
        move = np.array([
            axis("right", "left") + inp.move_axes[0],
            axis("down", "up") - inp.lift_axis,
            axis("forward", "back") + inp.move_axes[1],
        ])
        norm = np.linalg.norm(move)
        if norm > 1.0:  # diagonals are not faster than straight lines
            move /= norm
        speed = self._speed * (cfg.sprint_multiplier if held("sprint") else 1.0)
        rate = np.array([
            np.clip(axis("yaw_right", "yaw_left") + inp.look_axes[0], -1.0, 1.0) * cfg.turn_rate,
            np.clip(axis("pitch_up", "pitch_down") + inp.look_axes[1], -1.0, 1.0) * cfg.turn_rate,
            axis("roll_right", "roll_left") * cfg.roll_rate,
        ])
        return move * speed, rate

    def _evolve(self, s: _State, v_target, w_target, h: float) -> _State:
        """Closed-form state after h seconds of constant targets, position left unchanged (integrated by the caller)."""
        cfg = self.config
        v_tau = np.where(v_target != 0, cfg.accel_time, cfg.damping_time)
        vel, _ = _approach(s.vel, v_target, v_tau, h)
        rate, turned = _approach(s.rate, w_target, np.full(3, cfg.turn_time), h)
        keep = math.exp(-h / cfg.mouse_time) if cfg.mouse_time > 0 else 0.0
        applied = s.pending * (1.0 - keep)
        pending = s.pending * keep
        yaw, pitch, roll = s.angles + turned + np.array([applied[0], applied[1], 0.0])
        lim = cfg.pitch_limit
        lo, hi = min(-lim, s.angles[1]), max(lim, s.angles[1])  # never snap a pose set outside the limit
        if pitch > hi or pitch < lo:
            pitch = min(max(pitch, lo), hi)
            pending[1] = 0.0  # motion into the limit is dropped, not stored up
            rate[1] = 0.0
        return _State(s.pos, np.array([yaw, pitch, roll]), vel, rate, pending)

    def _move_rotation(self, angles: np.ndarray) -> np.ndarray:
        return _rotation(*angles) if self.config.fly else _rotation(angles[0], 0.0, 0.0)

    def _advance_time(self, dt: float) -> None:
        v_target, w_target = self._targets()
        n = max(1, math.ceil(dt / self.config.max_substep - 1e-9))
        h = dt / n
        for _ in range(n):
            s0 = self._s
            mid = self._evolve(s0, v_target, w_target, h / 2)
            end = self._evolve(s0, v_target, w_target, h)
            # Displacement = R0 @ (closed-form integral of v) + Simpson's rule on (R(t) - R0) v(t): exact while the
            # heading is constant, fourth-order accurate while it turns.
            R0, Rm, R1 = (self._move_rotation(x.angles) for x in (s0, mid, end))
            v_tau = np.where(v_target != 0, self.config.accel_time, self.config.damping_time)
            _, v_integral = _approach(s0.vel, v_target, v_tau, h)
            turn = (h / 6.0) * (4.0 * (Rm - R0) @ mid.vel + (R1 - R0) @ end.vel)
            end.pos = s0.pos + R0 @ v_integral + turn
            self._s = end
