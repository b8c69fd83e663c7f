"""Choosing a file: the platform's file dialog (tkinter) where there is one, else a path typed into the window.

The dialog runs in its own thread (on macOS, where Tk must own the main thread, on the main thread), so the walk goes
on behind it; its answer comes back through `FileDialog.poll()`. The in-window prompt (`PathPrompt`) takes pygame
TEXTINPUT/KEYDOWN events: Enter accepts, Esc cancels, Tab completes a path.
"""
from __future__ import annotations

import glob
import importlib.util
import os
import sys
import threading
from pathlib import Path

import pygame

IMAGE_TYPES = [("Images", "*.png *.jpg *.jpeg *.webp *.bmp"), ("All files", "*")]
WALK_TYPES = [("Saved walks", "*.walk"), ("All files", "*")]


def dialog_available() -> bool:
    if os.environ.get("SDL_VIDEODRIVER") in ("dummy", "offscreen"):
        return False
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    return importlib.util.find_spec("tkinter") is not None


class FileDialog:
    """One tkinter open-file dialog at a time. `poll()` -> None while open or nothing asked, else (purpose, path);
    path is '' when cancelled and starts with NUL when Tk failed (the caller falls back to the prompt)."""

    def __init__(self):
        self._result: tuple[str, str] | None = None
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def ask(self, purpose: str, title: str, types, initial_dir: str | Path) -> None:
        args = (purpose, title, types, str(initial_dir))
        if sys.platform == "darwin":
            self._ask(*args)
        else:
            self._thread = threading.Thread(target=self._ask, args=args, name="worldwalk-file-dialog", daemon=True)
            self._thread.start()

    def _ask(self, purpose, title, types, initial_dir):
        try:
            import tkinter
            from tkinter import filedialog

            root = tkinter.Tk()
            root.withdraw()
            try:
                path = filedialog.askopenfilename(parent=root, title=title, filetypes=types, initialdir=initial_dir)
            finally:
                root.destroy()
            self._result = (purpose, str(path or ""))
        except Exception as e:  # no Tk display, broken Tk: the caller falls back to the prompt
            self._result = (purpose, f"\0{type(e).__name__}: {e}")

    def poll(self) -> tuple[str, str] | None:
        r, self._result = self._result, None
        return r


class PathPrompt:
    """A one-line path editor inside the window."""

    def __init__(self, purpose: str, title: str, initial: str = "", suffixes: tuple[str, ...] = ()):
        self.purpose, self.title, self.text = purpose, title, initial
        self.suffixes = suffixes
        self.error = ""

    def handle(self, event) -> str | None:
        """-> "accept", "cancel" or None (still editing)."""
        if event.type == pygame.TEXTINPUT:
            self.text += event.text
            self.error = ""
        elif event.type == pygame.KEYDOWN:
            if event.key in (pygame.K_RETURN, pygame.K_KP_ENTER):
                if self.text.strip():
                    return "accept"
                self.error = "type a path first"
            elif event.key == pygame.K_ESCAPE:
                return "cancel"
            elif event.key == pygame.K_BACKSPACE:
                mod = getattr(event, "mod", 0)
                if mod & pygame.KMOD_CTRL:  # a whole path component
                    t = self.text.rstrip("/\\")
                    cut = max(t.rfind("/"), t.rfind("\\"))
                    self.text = t[:cut + 1] if cut >= 0 else ""
                else:
                    self.text = self.text[:-1]
            elif event.key == pygame.K_TAB:
                self.complete()
            elif event.key == pygame.K_v and getattr(event, "mod", 0) & pygame.KMOD_CTRL:
                self.paste()
        return None

    @property
    def path(self) -> str:
        return os.path.expanduser(self.text.strip().strip('"').strip("'"))

    def complete(self) -> None:
        matches = sorted(glob.glob(glob.escape(self.path) + "*"))
        if self.suffixes:
            matches = [m for m in matches if os.path.isdir(m) or m.lower().endswith(self.suffixes)]
        if not matches:
            self.error = "no match"
            return
        common = os.path.commonprefix(matches)
        if len(matches) == 1 and os.path.isdir(common):
            common += os.sep
        self.text = common
        self.error = "" if len(matches) == 1 else f"{len(matches)} matches"

    def paste(self) -> None:
        try:
            if not pygame.scrap.get_init():
                pygame.scrap.init()
            data = pygame.scrap.get(pygame.SCRAP_TEXT)
        except Exception:  # no clipboard support on this platform / driver
            data = None
        if data:
            self.text += data.decode("utf-8", "ignore").replace("\0", "").strip()
