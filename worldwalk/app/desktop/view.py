"""Drawing the explorer's window: the world view scaled to the window, and the overlays over it.

A mixin of `Explorer` (explorer.py), which owns the state it reads. Overlays are rendered into cached surfaces at most
four times a second (or when something they show changes), so a display-loop iteration costs a few blits and, with a
new frame, one smoothscale.
"""
from __future__ import annotations

import math
import os
import sys
import time

import numpy as np
import pygame

from worldwalk.app.desktop import hud, style
from worldwalk.app.desktop.minimap import draw_map


def heading_of(pose: np.ndarray) -> float:
    """Yaw in degrees of a c2w pose: 0 = the start camera's forward (+Z), positive = turned right."""
    f = pose[:3, 2]
    return math.degrees(math.atan2(f[0], f[2]))


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class ExplorerView:
    def _draw(self, now: float, force: bool = False) -> None:
        if now >= self._hud_due:
            self._hud_due = now + 0.25
            self._hud_cache.clear()
            self._dirty = True
        if not (self._dirty or force) or self.screen is None:
            return
        self._dirty = False
        scr = self.screen
        if self.shown is not None:
            if self._view_surf is None:
                f = self.shown.frame
                surf = pygame.image.frombuffer(np.ascontiguousarray(f).tobytes(), (f.shape[1], f.shape[0]), "RGB")
                self._view_surf = pygame.transform.smoothscale(surf, self.view_wh)
            scr.blit(self._view_surf, (0, 0))
        else:
            scr.fill((0, 0, 0))
        for key, make, pos in self._overlays():
            if key not in self._hud_cache:
                self._hud_cache[key] = make()  # None: nothing to show
            s = self._hud_cache[key]
            if s is not None:
                scr.blit(s, pos(s))
        pygame.display.flip()

    def _overlays(self):
        """(cache key, make surface, where) of every overlay, in drawing order."""
        W, H = self.view_wh
        M = style.MARGIN
        out = []
        if self.hud_on:
            out.append(("stats", self._stats_surface, lambda s: (M, M)))
            if W >= 2 * style.MAP_SIZE and H >= style.MAP_SIZE + 60:
                out.append(("map", self._map_surface, lambda s: (W - s.get_width() - M, H - s.get_height() - M)))
        out.append(("badges", self._badges_surface, lambda s: (W - s.get_width() - M, M)))
        out.append(("banner", self._banner_surface,  # centred; low in the view once there is a view
                    lambda s: ((W - s.get_width()) // 2, (H - s.get_height()) // 2 if self.shown is None
                               else int(H * 0.72) - s.get_height())))
        out.append(("toasts", self._toasts_surface, lambda s: (M, H - s.get_height() - M)))
        if self.help_on:
            out.append(("help", lambda: hud.help_overlay(self.fonts, self.view_wh),
                        lambda s: ((W - s.get_width()) // 2, (H - s.get_height()) // 2)))
        if self.prompt is not None:
            p = self.prompt
            out.append((("prompt", p.text, p.error, int(time.monotonic() * 2) % 2),
                        lambda: hud.prompt_box(self.fonts, p.title, p.text, int(time.monotonic() * 2) % 2 == 0,
                                               min(W - 40, 720), p.error),
                        lambda s: ((W - s.get_width()) // 2, (H - s.get_height()) // 2)))
        return out

    def _stats_surface(self):
        w, st = self.walker, self.walker.stats
        rows = []
        ratio = self.realtime_ratio
        if st.generated_fps > 0:
            rows.append(("generated", f"{st.generated_fps:.1f} fps  ·  x{ratio:.2f} real time",
                         style.ACCENT if ratio >= 1 else style.AMBER))
        else:
            rows.append(("generated", "waiting for the first chunk", style.DIM))
        ms = st.chunk_ms
        if ms:
            parts = "  ".join(f"{k.replace('_', ' ')} {v:.0f}" for k, v in ms.items() if k != "total")
            rows.append(("chunk", f"{ms.get('total', 0):.0f} ms  ({parts})", style.TEXT))
        lat = "—" if self.latency_s is None else f"{1000 * self.latency_s:.0f} ms"
        pipe = "" if self.pipeline_s is None else f"  (pipeline {1000 * self.pipeline_s:.0f} ms)"
        rows.append(("input to view", lat + pipe, style.TEXT))
        rows.append(("display", f"{self.loop.hz:.0f} Hz loop  ·  {self.fps:g} fps playback", style.TEXT))
        now = time.monotonic()
        if now - self._rss[0] > 1.0:
            self._rss = (now, rss_bytes())
        rows.append(("memory", f"{self._rss[1] / 2 ** 30:.2f} GiB RSS", style.TEXT))
        if self.shown is not None:
            x, y, z = (round(float(v), 2) + 0.0 for v in self.shown.pose[:3, 3])  # no "-0.00"
            rows.append(("position", f"x {x:+.2f}   y {0.0 - y:+.2f}   z {z:+.2f} m", style.TEXT))
            rows.append(("heading", f"{heading_of(self.shown.pose):+.0f}°   speed {w.rig.speed:.2f} m/s",
                         style.TEXT))
            rows.append(("frame", f"{self.shown.number}  ({self.shown.number / self.fps:.1f} s)", style.TEXT))
        desc = w.world_desc
        title = f"worldwalk · {desc.get('preset', w.session.cfg.name)}"
        if desc.get("weights") == "random":
            title += " · random weights"
        return hud.stats_panel(self.fonts, title, rows)

    def _map_surface(self):
        w = self.walker
        pos = (0.0, 0.0) if self.shown is None else (float(self.shown.pose[0, 3]), float(self.shown.pose[2, 3]))
        heading = 0.0 if self.shown is None else heading_of(self.shown.pose)
        marks = []
        for b in list(w.bookmarks):
            p = b.rig.pose
            marks.append((float(p[0, 3]), float(p[2, 3])))
        path = list(w.path)  # chunk ends (the first is the start) up to what the generator has made
        if self.shown is not None:  # ... drawn up to the frame on screen
            path = path[:max(0, self.shown.number - 1) // self.per_chunk + 1]
        return draw_map(style.MAP_SIZE, path, pos, heading, marks, self.fonts.small)

    def _badges_surface(self):
        w = self.walker
        items = []
        rec = w.recorder
        if rec is not None:
            items.append(hud.badge(self.fonts, f"REC  {rec.frames / self.fps:.1f} s", style.TEXT, dot=True))
        elif self.recording_wanted:
            items.append(hud.badge(self.fonts, "REC …", style.DIM))
        if w.paused and not w.error:
            items.append(hud.badge(self.fonts, "PAUSED", style.AMBER))
        if self.captured:
            items.append(hud.hint(self.fonts, "Esc: release mouse   H: help"))
        elif self.prompt is None:
            items.append(hud.hint(self.fonts, "click: mouse-look   H: help   Tab: HUD"))
        if not items:
            return None
        wd = max(s.get_width() for s in items)
        ht = sum(s.get_height() for s in items) + 6 * (len(items) - 1)
        out = pygame.Surface((wd, ht), pygame.SRCALPHA)
        y = 0
        for s in items:
            out.blit(s, (wd - s.get_width(), y))
            y += s.get_height() + 6
        return out

    def _banner_surface(self):
        w = self.walker
        if w.error:
            return hud.banner(self.fonts, f"generation stopped: {w.error[:80]}", style.RED)
        if self.busy:
            return hud.banner(self.fonts, f"{self._task_name}…", style.TEXT)
        if self.behind:
            if w.stats.generated_fps > 0:
                return hud.banner(self.fonts, f"generating…  (x{self.realtime_ratio:.2f} real time)")
            return hud.banner(self.fonts, "generating the first chunk…")
        return None

    def _toasts_surface(self):
        if not self.toasts:
            return None
        items = [hud.message(self.fonts, text, color, self.view_wh[0] - 2 * style.MARGIN - style.MAP_SIZE - 10)
                 for _, text, color in self.toasts[-3:]]
        wd = max(s.get_width() for s in items)
        ht = sum(s.get_height() for s in items) + 4 * (len(items) - 1)
        out = pygame.Surface((wd, ht), pygame.SRCALPHA)
        y = 0
        for s in items:
            out.blit(s, (0, y))
            y += s.get_height() + 4
        return out
