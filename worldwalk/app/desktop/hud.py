"""The explorer's overlays drawn with pygame's default font: stats panel, badges, banner, messages, help, path prompt.

Every function returns a surface; the window caches them and re-renders a few times a second at most, so drawing the
HUD costs the display loop a few blits per frame.
"""
from __future__ import annotations

import pygame

from worldwalk.app.desktop import style
from worldwalk.app.desktop.keys import HELP


class Fonts:
    def __init__(self):
        self.body = pygame.font.Font(None, style.FONT_SIZE)
        self.title = pygame.font.Font(None, style.TITLE_SIZE)
        self.small = pygame.font.Font(None, 16)
        self.big = pygame.font.Font(None, 30)


def _panel(w: int, h: int, color=style.PANEL) -> pygame.Surface:
    s = pygame.Surface((w, h), pygame.SRCALPHA)
    pygame.draw.rect(s, color, s.get_rect(), border_radius=8)
    return s


def stats_panel(fonts: Fonts, title: str, rows: list[tuple[str, str, tuple]]) -> pygame.Surface:
    """rows: (label, value, value colour)."""
    pad, gap = 10, 3
    t = fonts.title.render(title, True, style.TEXT)
    labels = [fonts.body.render(a, True, style.DIM) for a, _, _ in rows]
    values = [fonts.body.render(b, True, c) for _, b, c in rows]
    lw = max((s.get_width() for s in labels), default=0) + 12
    w = max(t.get_width(), lw + max((s.get_width() for s in values), default=0)) + 2 * pad
    lh = fonts.body.get_linesize() + gap
    h = pad + t.get_height() + 6 + lh * len(rows) + pad - gap
    s = _panel(w, h)
    s.blit(t, (pad, pad))
    y = pad + t.get_height() + 6
    for a, b in zip(labels, values):
        s.blit(a, (pad, y))
        s.blit(b, (pad + lw, y))
        y += lh
    return s


def badge(fonts: Fonts, text: str, color, dot: bool = False) -> pygame.Surface:
    """A small pill, with a filled dot before the text when `dot` (the recording indicator)."""
    t = fonts.title.render(text, True, color)
    d = 16 if dot else 0
    s = _panel(t.get_width() + 20 + d, t.get_height() + 10)
    if dot:
        pygame.draw.circle(s, style.RED, (10 + 6, s.get_height() // 2), 6)
    s.blit(t, (10 + d, 5))
    return s


def banner(fonts: Fonts, text: str, color=style.AMBER) -> pygame.Surface:
    t = fonts.big.render(text, True, color)
    s = _panel(t.get_width() + 28, t.get_height() + 14, style.PANEL_SOLID)
    s.blit(t, (14, 7))
    return s


def message(fonts: Fonts, text: str, color=style.TEXT, width: int = 900) -> pygame.Surface:
    text = _fit(fonts.body, text, width - 24)
    t = fonts.body.render(text, True, color)
    s = _panel(t.get_width() + 24, t.get_height() + 12, style.PANEL_SOLID)
    s.blit(t, (12, 6))
    return s


def hint(fonts: Fonts, text: str) -> pygame.Surface:
    t = fonts.small.render(text, True, style.DIM)
    s = _panel(t.get_width() + 14, t.get_height() + 8)
    s.blit(t, (7, 4))
    return s


def help_overlay(fonts: Fonts, view: tuple[int, int]) -> pygame.Surface:
    pad = 16
    title = fonts.title.render("worldwalk explorer — keys", True, style.TEXT)
    keys = [fonts.body.render(k, True, style.ACCENT) for k, _ in HELP]
    what = [fonts.body.render(v, True, style.TEXT) for _, v in HELP]
    kw = max(s.get_width() for s in keys) + 18
    lh = fonts.body.get_linesize() + 2
    w = min(view[0] - 20, max(title.get_width(), kw + max(s.get_width() for s in what)) + 2 * pad)
    h = min(view[1] - 20, pad + title.get_height() + 10 + lh * len(HELP) + pad)
    s = _panel(w, h, style.PANEL_SOLID)
    s.blit(title, (pad, pad))
    y = pad + title.get_height() + 10
    for a, b in zip(keys, what):
        if y + lh > h:
            break
        s.blit(a, (pad, y))
        s.blit(b, (pad + kw, y))
        y += lh
    return s


def prompt_box(fonts: Fonts, title: str, text: str, cursor: bool, width: int, error: str = "") -> pygame.Surface:
    pad = 14
    t = fonts.title.render(title, True, style.TEXT)
    shown = _fit(fonts.body, text + ("|" if cursor else " "), width - 2 * pad - 12, keep_end=True)
    line = fonts.body.render(shown, True, style.ACCENT)
    foot = fonts.small.render("Enter: open   Esc: cancel   Tab: complete", True, style.DIM)
    err = fonts.small.render(_fit(fonts.small, error, width - 2 * pad), True, style.RED) if error else None
    h = pad + t.get_height() + 8 + line.get_height() + 14 + foot.get_height() + pad + (
        err.get_height() + 4 if err else 0)
    s = _panel(width, h, style.PANEL_SOLID)
    s.blit(t, (pad, pad))
    y = pad + t.get_height() + 8
    pygame.draw.rect(s, (40, 44, 52), (pad - 4, y - 4, width - 2 * pad + 8, line.get_height() + 8), border_radius=4)
    s.blit(line, (pad + 2, y))
    y += line.get_height() + 14
    if err:
        s.blit(err, (pad, y))
        y += err.get_height() + 4
    s.blit(foot, (pad, y))
    return s


def _fit(font: pygame.font.Font, text: str, width: int, keep_end: bool = False) -> str:
    """`text` shortened with an ellipsis to fit `width` pixels."""
    if font.size(text)[0] <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix (or suffix) that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        cand = ("…" + text[-mid:]) if keep_end else (text[:mid] + "…")
        lo, hi = (mid, hi) if font.size(cand)[0] <= width else (lo, mid - 1)
    return ("…" + text[-lo:]) if keep_end else (text[:lo] + "…")
