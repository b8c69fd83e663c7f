"""The explorer in a real X window (Xvfb): a screenshot of the X screen shows the world view plus the HUD.

Needs the Xvfb binary (Debian: apt-get install xvfb); the screenshot is Pillow's ImageGrab over XCB (in the Pillow
wheels). Skips, saying why, where Xvfb is missing.
"""
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

pygame = pytest.importorskip("pygame", reason="the desktop explorer needs pygame (pip install pygame)")

from worldwalk.app import desktop  # noqa: E402
from worldwalk.app.desktop import style  # noqa: E402
from worldwalk.app.desktop.scripted import key_down, key_up, press, wait_message  # noqa: E402

SCREEN = (1024, 768)


def free_display() -> int:
    for n in range(91, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number in :91-:199")


@pytest.fixture
def xvfb(monkeypatch):
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.skip("Xvfb is not installed (Debian/Ubuntu: apt-get install xvfb); the real-window test needs it")
    n = free_display()
    proc = subprocess.Popen([exe, f":{n}", "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sock = Path(f"/tmp/.X11-unix/X{n}")
    end = time.monotonic() + 20
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            err = proc.stderr.read().decode(errors="replace")[-500:]
            pytest.fail(f"Xvfb :{n} did not start: {err}")
        time.sleep(0.05)
    monkeypatch.setenv("DISPLAY", f":{n}")
    monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    yield f":{n}"
    if pygame.display.get_init():
        pygame.display.quit()
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def grab(display: str) -> np.ndarray:
    """The whole X screen, (H, W, 3) uint8: Pillow's ImageGrab over XCB, else `xwd -root` (x11-apps)."""
    try:
        from PIL import ImageGrab
        return np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))
    except OSError as e:  # a Pillow built without XCB
        if shutil.which("xwd") is None:
            pytest.skip(f"no way to screenshot X: Pillow says {e}; and xwd (apt-get install x11-apps) is missing")
        return read_xwd(subprocess.run(["xwd", "-root", "-silent", "-display", display], capture_output=True,
                                       check=True).stdout)


def read_xwd(data: bytes) -> np.ndarray:
    """A 24- or 32-bit-per-pixel TrueColor XWD dump -> (H, W, 3) uint8."""
    h = [int(x) for x in np.frombuffer(data[:100], ">u4")]
    header_size, width, height, byte_order, bpp, bpl, ncolors = h[0], h[4], h[5], h[7], h[11], h[12], h[19]
    masks = h[14:17]
    assert bpp in (24, 32), f"xwd: {bpp} bits per pixel; expected 24 or 32"
    nb = bpp // 8
    start = header_size + 12 * ncolors
    rows = np.frombuffer(data[start:start + bpl * height], np.uint8).reshape(height, bpl)
    b = rows[:, :nb * width].reshape(height, width, nb).astype(np.uint32)
    order = range(nb) if byte_order == 0 else range(nb - 1, -1, -1)  # LSBFirst: byte 0 is the lowest
    px = sum(b[..., i] << (8 * k) for k, i in enumerate(order))
    shifts = [(m & -m).bit_length() - 1 for m in masks]
    return np.stack([(px & m) >> s for m, s in zip(masks, shifts)], -1).astype(np.uint8)


def window_rect():
    from pygame._sdl2.video import Window
    win = Window.from_display_module()
    return (*win.position, *win.size)


def test_screenshot_of_the_real_window_shows_world_and_hud(xvfb, tmp_path):
    ex = desktop.build(desktop.parse_args(["--random-weights", "--preset", "test", "--steps", "2", "--no-dialog",
                                           "--out-dir", str(tmp_path)]))
    ex.open_window()
    try:
        assert pygame.display.get_driver() == "x11"
        key_down("w")
        key_down("right")
        assert ex.run(until=lambda: ex.shown.number >= 20, timeout=60) == "until"
        key_up("right")
        press("b")
        wait_message(ex, "bookmark 1")
        press("r")
        assert ex.run(until=lambda: ex.walker.recorder is not None and ex.walker.recorder.frames >= 6,
                      timeout=60) == "until"
        press("space")  # hold still for the screenshot
        ex.run(timeout=0.8)
        ex._draw(time.monotonic(), force=True)
        ex.run(frames=3)
        shot = grab(xvfb)
        x, y, w, h = window_rect()
        assert (w, h) == ex.view_wh
        win = shot[y:y + h, x:x + w].astype(int)
        frame = ex.shown.frame
        from PIL import Image
        Image.fromarray(shot).save(tmp_path / "xvfb-screen.png")
        if os.environ.get("WORLDWALK_SHOT"):  # keep it to look at
            Image.fromarray(shot).save(os.environ["WORLDWALK_SHOT"])
    finally:
        key_up("w")
        ex.close()

    assert shot.shape[:2] == (SCREEN[1], SCREEN[0])
    assert shot.reshape(-1, 3).std(0).max() > 20  # not a blank or uniform screen
    assert win.std() > 10
    outside = np.concatenate([shot[:, x + w:].reshape(-1, 3), shot[y + h:].reshape(-1, 3)])
    assert len(outside) == 0 or outside.std() < 1  # the rest of the X screen is empty: what we see is the window

    # world view: away from the overlays the window is the last frame, scaled up
    ref = np.asarray(Image.fromarray(frame).resize((w, h), Image.BILINEAR)).astype(int)
    band = (slice(int(0.35 * h), int(0.6 * h)), slice(int(0.3 * w), int(0.7 * w)))
    assert np.abs(win[band] - ref[band]).mean() < 6

    # HUD: the stats panel (top left) holds light text on a dark panel; the map (bottom right) its path colour;
    # the recording badge (top right) its red dot
    panel = win[10:150, 10:300]
    light = (panel.min(-1) > 200).sum()
    dark = (panel.max(-1) < 90).sum()
    assert light > 300 and dark > 0.3 * panel.shape[0] * panel.shape[1], (light, dark)
    assert panel.mean() < ref[10:150, 10:300].mean() - 30  # darker than the world it covers
    mp = win[h - 10 - style.MAP_SIZE:h - 10, w - 10 - style.MAP_SIZE:w - 10]
    assert (np.abs(mp - np.array(style.PATH)).sum(-1) < 60).sum() > 20  # the path walked
    assert (np.abs(mp - np.array(style.ACCENT)).sum(-1) < 60).sum() > 10  # you are here
    top_right = win[5:60, w - 260:w - 5]
    red = (top_right[..., 0] > 200) & (top_right[..., 1] < 110) & (top_right[..., 2] < 110)
    assert red.sum() > 20  # the recording dot
