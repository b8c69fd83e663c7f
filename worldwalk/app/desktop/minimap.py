"""The HUD's top-down map: the path walked (x right, z forward = up), the start, bookmarks and where you stand now."""
from __future__ import annotations

import math

import pygame

from worldwalk.app.desktop import style


def _nice_step(span: float) -> float:
    """A grid spacing of 1, 2 or 5 x 10^k metres giving about 4 lines across `span`."""
    raw = max(span / 4, 1e-6)
    k = 10 ** math.floor(math.log10(raw))
    return next(m * k for m in (1, 2, 5, 10) if m * k >= raw)


def draw_map(size: int, path: list, pos: tuple[float, float], heading_deg: float, marks: list,
             font: pygame.font.Font) -> pygame.Surface:
    """-> a (size x size) translucent surface. path [(x, z)], pos (x, z) now, marks [(x, z)] bookmarks."""
    surf = pygame.Surface((size, size), pygame.SRCALPHA)
    pygame.draw.rect(surf, style.PANEL, surf.get_rect(), border_radius=8)
    pts = list(path) + [pos] + list(marks)
    xs, zs = [p[0] for p in pts], [p[1] for p in pts]
    span = max(max(xs) - min(xs), max(zs) - min(zs), 2.0) * 1.25
    cx, cz = (max(xs) + min(xs)) / 2, (max(zs) + min(zs)) / 2
    pad = 12
    scale = (size - 2 * pad) / span

    def to_px(x, z):
        return (size / 2 + (x - cx) * scale, size / 2 - (z - cz) * scale)

    step = _nice_step(span)
    g0x, g0z = math.floor((cx - span / 2) / step), math.floor((cz - span / 2) / step)
    for i in range(g0x, g0x + int(span / step) + 2):
        x = to_px(i * step, 0)[0]
        if pad <= x <= size - pad:
            pygame.draw.line(surf, style.GRID, (x, pad), (x, size - pad))
    for j in range(g0z, g0z + int(span / step) + 2):
        z = to_px(0, j * step)[1]
        if pad <= z <= size - pad:
            pygame.draw.line(surf, style.GRID, (pad, z), (size - pad, z))
    if path:
        pygame.draw.lines(surf, style.PATH, False, [to_px(*p) for p in path] + [to_px(*pos)], 2)
    sx, sz = to_px(0.0, 0.0)
    pygame.draw.circle(surf, style.DIM, (sx, sz), 3)
    for m in marks:
        mx, mz = to_px(*m)
        pygame.draw.polygon(surf, style.AMBER, [(mx, mz - 4), (mx + 4, mz), (mx, mz + 4), (mx - 4, mz)])
    px, pz = to_px(*pos)
    h = math.radians(heading_deg)  # 0 = +z (up on the map), positive turns right
    tip = (px + 9 * math.sin(h), pz - 9 * math.cos(h))
    left = (px + 5 * math.sin(h - 2.4), pz - 5 * math.cos(h - 2.4))
    right = (px + 5 * math.sin(h + 2.4), pz - 5 * math.cos(h + 2.4))
    pygame.draw.polygon(surf, style.ACCENT, [tip, left, right])
    label = font.render(f"{step:g} m grid", True, style.DIM)
    surf.blit(label, (size - label.get_width() - 6, size - label.get_height() - 3))
    return surf
