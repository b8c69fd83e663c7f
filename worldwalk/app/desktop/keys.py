"""Keyboard layout of the explorer: held keys for the camera rig, one-shot actions, and the help overlay's text."""
from __future__ import annotations

import pygame

# held keys -> controls.rig key names
MOVE_KEYS = {
    pygame.K_w: "w", pygame.K_a: "a", pygame.K_s: "s", pygame.K_d: "d", pygame.K_q: "q", pygame.K_e: "e",
    pygame.K_z: "z", pygame.K_c: "c",
    pygame.K_LEFT: "left", pygame.K_RIGHT: "right", pygame.K_UP: "up", pygame.K_DOWN: "down",
    pygame.K_LSHIFT: "shift", pygame.K_RSHIFT: "shift",
}

# one-shot actions, without Ctrl
ACTIONS = {
    pygame.K_SPACE: "pause",
    pygame.K_r: "record",
    pygame.K_F12: "screenshot",
    pygame.K_b: "bookmark",
    pygame.K_BACKSPACE: "rewind",
    pygame.K_n: "next_scene",
    pygame.K_o: "open_image",
    pygame.K_h: "help",
    pygame.K_TAB: "hud",
    pygame.K_F1: "hud",
    pygame.K_PLUS: "speed_up", pygame.K_EQUALS: "speed_up", pygame.K_KP_PLUS: "speed_up",
    pygame.K_MINUS: "speed_down", pygame.K_KP_MINUS: "speed_down",
    pygame.K_ESCAPE: "escape",
}

# with Ctrl (or Cmd)
CTRL_ACTIONS = {
    pygame.K_s: "save_walk",
    pygame.K_l: "load_walk",
    pygame.K_q: "quit",
    pygame.K_w: "quit",
}

HELP = [
    ("W / S", "walk forward / back"),
    ("A / D", "step left / right"),
    ("Q / E", "down / up"),
    ("mouse", "look (click to capture, Esc releases)"),
    ("arrows", "turn and look up / down"),
    ("Z / C", "roll"),
    ("Shift", "sprint"),
    ("+ / -", "walking speed"),
    ("Space", "pause / continue"),
    ("R", "record on / off (MP4 + replay JSON)"),
    ("F12", "screenshot (Shift+F12: the frame alone)"),
    ("B", "bookmark this moment"),
    ("Backspace", "rewind to the last bookmark"),
    ("N", "next start scene"),
    ("O", "open an image"),
    ("Ctrl+S / Ctrl+L", "save / load the walk (.walk)"),
    ("Tab or F1", "HUD on / off"),
    ("H", "this help"),
    ("Ctrl+Q", "quit"),
]


def is_ctrl(mod: int) -> bool:
    return bool(mod & (pygame.KMOD_CTRL | pygame.KMOD_META))
