"""Driving the explorer from code (tests, demos, benchmarks): posted pygame events, exactly as a person's would arrive.

    ex = build(args); ex.open_window()
    key_down("w"); ex.run(until=lambda: ex.shown.pose[2, 3] > 1, timeout=30); key_up("w")
    press("space"); type_text("/tmp/x.png"); press("return")
"""
from __future__ import annotations

import pygame

NAMED = {"space": pygame.K_SPACE, "return": pygame.K_RETURN, "escape": pygame.K_ESCAPE, "tab": pygame.K_TAB,
         "backspace": pygame.K_BACKSPACE, "left": pygame.K_LEFT, "right": pygame.K_RIGHT, "up": pygame.K_UP,
         "down": pygame.K_DOWN, "shift": pygame.K_LSHIFT, "f1": pygame.K_F1, "f12": pygame.K_F12,
         "plus": pygame.K_PLUS, "minus": pygame.K_MINUS}


def keycode(name: str) -> int:
    return NAMED.get(name.lower()) or pygame.key.key_code(name)


def key_down(name: str, mod: int = 0) -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=keycode(name), mod=mod, unicode="", scancode=0))


def key_up(name: str, mod: int = 0) -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYUP, key=keycode(name), mod=mod, unicode="", scancode=0))


def press(name: str, ctrl: bool = False, shift: bool = False) -> None:
    mod = (pygame.KMOD_LCTRL if ctrl else 0) | (pygame.KMOD_LSHIFT if shift else 0)
    key_down(name, mod)
    key_up(name, mod)


def type_text(text: str) -> None:
    pygame.event.post(pygame.event.Event(pygame.TEXTINPUT, text=text))


def click(pos=(10, 10), button: int = 1) -> None:
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=pos, button=button))
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=pos, button=button))


def mouse_move(dx: float, dy: float, pos=(10, 10)) -> None:
    pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=pos, rel=(dx, dy), buttons=(0, 0, 0)))


def wait_message(ex, text: str, timeout: float = 30.0) -> str:
    """Run the explorer's loop until a message containing `text` shows; -> that message (AssertionError if none)."""
    hit: list[str] = []

    def seen():
        hit[:] = [t for _, t, _ in ex.toasts if text in t]
        return bool(hit)
    if ex.run(until=seen, timeout=timeout) != "until":
        raise AssertionError(f"no message with {text!r} in {timeout:g} s; messages: {[t for _, t, _ in ex.toasts]}")
    return hit[0]
