"""The browser demo end to end in a real headless Chromium (Debian's `chromium`, driven by Playwright's Python package).

Two tabs walk at the same time, one forward (W) and one backward (S), each in its own world; bad uploads get a message
in the page and the server goes on serving; the cap puts a third tab in line until a tab closes. A screenshot of the
page is saved as a test artifact (its path is printed).

Needs: apt-get install -y chromium; pip install playwright (the package only: `playwright install` is not used).
"""
import shutil
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
GRADIO_NOISE = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting':DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:DeprecationWarning"),
]
pytestmark = GRADIO_NOISE


def web_server(*flags):
    """A demo server (test preset, untrained weights) on 127.0.0.1 and a free port, in a thread."""
    import argparse

    try:
        import gradio  # noqa: F401

        from worldwalk.app.web import add_parser, create_server
    except ImportError as e:
        pytest.fail(f"the browser demo's tests need the web extra ({e.name} is missing): pip install -e '.[web]'",
                    pytrace=False)
    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers())
    args = p.parse_args(["web", "--random-weights", "--preset", "test", "--steps", "2", "--port", "0",
                         "--threads", "1", *flags])
    return create_server(args).start()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser test needs Debian's chromium "
                    "(apt-get install -y chromium)", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser test needs Playwright's Python package (pip install playwright; "
                    "`playwright install` is not needed: it drives /usr/bin/chromium)", pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def server():
    n = torch.get_num_threads()
    srv = web_server("--max-walks", "2", "--max-upload-mb", "1")
    try:
        yield srv
    finally:
        srv.stop()
        torch.set_num_threads(n)


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1360, "height": 940})
    try:
        yield ctx
    finally:
        ctx.close()


def open_page(ctx, url):
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_selector("#ww-start", timeout=60_000)
    page.wait_for_function("() => !!window.worldwalk", timeout=30_000)
    return page


def hud(page) -> dict:
    return page.evaluate("""() => {
        const h = document.querySelector('#ww-hud'), f = document.querySelector('#ww-frame');
        return {state: h.dataset.state, z: Number(h.dataset.z || 0), x: Number(h.dataset.x || 0),
                seq: Number(f.dataset.seq || 0), text: h.innerText,
                overlay: document.querySelector('#ww-overlay').innerText};
    }""")


def start_walk(page, state="live"):
    page.click("#ww-start")
    page.wait_for_function(f"() => document.querySelector('#ww-hud')?.dataset.state === '{state}'", timeout=60_000)


def wait_frame_shown(page):
    """The frame fades in (CSS opacity over 0.25 s): a screenshot before that ends sees it mixed with the dark view."""
    page.wait_for_function("""() => { const f = document.querySelector('#ww-frame');
        return f && f.complete && f.naturalWidth > 0 && getComputedStyle(f).opacity === '1'; }""", timeout=30_000)


def frame_pixels(page) -> np.ndarray:
    import io
    wait_frame_shown(page)
    return np.asarray(Image.open(io.BytesIO(page.locator("#ww-frame").screenshot())).convert("RGB"), dtype=np.int16)


def status_text(page) -> str:
    return page.locator("#ww-status").inner_text()


def test_two_tabs_walk_their_own_worlds(browser, context, server, tmp_path):
    ahead, back = open_page(context, server.url), open_page(context, server.url)
    start_walk(ahead)
    start_walk(back)
    before = frame_pixels(ahead)
    seq0 = hud(ahead)["seq"]
    ahead.keyboard.down("w")
    back.keyboard.down("s")
    t0 = time.monotonic()
    # hold the keys for two seconds (longer only if the machine is so busy that no chunk has read them yet)
    while time.monotonic() - t0 < 2.0 or (hud(ahead)["z"] <= 0.05 or hud(back)["z"] >= -0.05):
        assert time.monotonic() - t0 < 90, f"the walks did not move: {hud(ahead)} {hud(back)}"
        time.sleep(0.1)
    ahead.keyboard.up("w")
    back.keyboard.up("s")
    time.sleep(1.0)
    a, b = hud(ahead), hud(back)
    assert a["state"] == b["state"] == "live"
    assert a["z"] > 0.1 and abs(a["x"]) < 0.05, a  # forward is +z
    assert b["z"] < -0.1 and abs(b["x"]) < 0.05, b  # each tab walks in its own world
    assert a["seq"] > seq0 + 5 and np.abs(frame_pixels(ahead) - before).max() > 0  # the picture changed
    assert "fps" in a["text"] and "latency" in a["text"]
    shot = tmp_path / "worldwalk_web.png"
    ahead.screenshot(path=str(shot))
    print(f"\nscreenshot of the walking page: {shot}")
    art = Path(__file__).resolve().parents[2] / "test-artifacts"
    if art.is_dir():  # CI collects this folder when it exists
        shutil.copy(shot, art / shot.name)
    tokens = {p.evaluate("() => window.worldwalk.token") for p in (ahead, back)}
    assert len(tokens) == 2 and all(tokens)


def huge_png() -> bytes:
    """A valid PNG header claiming 30000 x 30000 pixels (the pixels are never decoded)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_bad_uploads_get_a_message_and_the_server_goes_on(context, server):
    page = open_page(context, server.url)
    upload = page.locator("#ww-upload input[type=file]")
    noise = (np.random.default_rng(0).random((700, 700, 3)) * 255).astype(np.uint8)
    import io
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "PNG")  # ~1.4 MB: over this server's 1 MB limit
    for name, data, expect in (("notes.png", b"these are words, not pixels", "not an image"),
                               ("empty.jpg", b"", "empty"),
                               ("huge.png", huge_png(), "too large"),
                               ("heavy.png", buf.getvalue(), "too large")):
        upload.set_input_files(files=[{"name": name, "mimeType": "image/png", "buffer": data}])
        page.wait_for_function(
            "([n, e]) => { const t = document.querySelector('#ww-status')?.innerText || '';"
            " return t.includes(n) && t.includes(e); }", arg=[name, expect], timeout=30_000)
        assert "still" in status_text(page)  # and the start image stays what it was
        page.wait_for_selector("#ww-upload input[type=file]", state="attached", timeout=10_000)
    # a good upload after the bad ones, then a walk from it
    ok = io.BytesIO()
    Image.fromarray(noise[:200, :300]).save(ok, "PNG")
    upload.set_input_files(files=[{"name": "mine.png", "mimeType": "image/png", "buffer": ok.getvalue()}])
    page.wait_for_function("() => (document.querySelector('#ww-status')?.innerText || '').includes('mine.png')",
                           timeout=30_000)
    start_walk(page)
    assert "mine.png" in status_text(page)
    page.close()


def solid_png(w, h, rgb, level=1) -> bytes:
    import io
    buf = io.BytesIO()
    Image.new("RGB", (w, h), rgb).save(buf, "PNG", compress_level=level)
    return buf.getvalue()


def mean_rgb(page, selector) -> np.ndarray:
    import io
    shot = Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("RGB")
    return np.asarray(shot, dtype=np.float64).reshape(-1, 3).mean(0)


def test_a_48_megapixel_upload_is_ready_in_seconds_and_the_walk_starts_from_the_picture_shown(context, server):
    """An 8000x6000 PNG is decoded once and shrunk before any preview is made; a second picture uploaded while the
    first is still being read (after the upload box's ✕) wins, and the walk starts from the picture the page shows."""
    page = open_page(context, server.url)
    upload = page.locator("#ww-upload input[type=file]")
    blue = solid_png(8000, 6000, (20, 60, 200))  # 48 megapixels, small on the wire (under this server's 1 MB)
    t0 = time.monotonic()
    upload.set_input_files(files=[{"name": "huge.png", "mimeType": "image/png", "buffer": blue}])
    page.wait_for_function("() => (document.querySelector('#ww-status')?.innerText || '').includes('huge.png')",
                           timeout=60_000)
    took = time.monotonic() - t0
    print(f"\n48-megapixel upload ready in {took:.2f} s")
    assert took < 10, f"a 48-megapixel upload took {took:.1f} s"
    page.wait_for_function("() => !!document.querySelector('#ww-preview img')?.complete", timeout=10_000)
    r, g, b = mean_rgb(page, "#ww-preview img")
    assert r < 60 and b > 150, (r, g, b)  # the preview is the blue picture
    # again, and this time the visitor changes their mind while it is being read: ✕, and the start scene stays
    page.locator("#ww-upload button[aria-label=Clear]").click()
    upload.set_input_files(files=[{"name": "huge2.png", "mimeType": "image/png",
                                   "buffer": solid_png(8000, 6000, (20, 60, 201))}])
    page.locator("#ww-upload button[aria-label=Clear]").click()
    time.sleep(took + 1.0)  # long enough for the big one to have been read: it must not come back
    assert "Start scene" in status_text(page) and "huge" not in status_text(page)
    assert page.locator("#ww-upload .filename").count() == 0
    assert mean_rgb(page, "#ww-preview img")[0] > 100  # the scene, not the blue picture
    # then another picture: the walk starts from it
    upload.set_input_files(files=[{"name": "red.png", "mimeType": "image/png",
                                   "buffer": solid_png(300, 200, (220, 30, 30))}])
    page.wait_for_function("() => (document.querySelector('#ww-status')?.innerText || '').includes('red.png')",
                           timeout=60_000)
    assert page.locator("#ww-upload .filename").get_attribute("aria-label") == "red.png"  # the upload box agrees
    r, g, b = mean_rgb(page, "#ww-preview img")
    assert r > 150 and b < 100, (r, g, b)
    start_walk(page)
    wait_frame_shown(page)
    r, g, b = mean_rgb(page, "#ww-frame")
    assert r > 150 and b < 100, (r, g, b)  # the start frame is the picture shown
    page.close()


def halves_rgb(page, selector) -> tuple[np.ndarray, np.ndarray]:
    """Mean colours of the top and bottom halves of an element's screenshot."""
    import io
    a = np.asarray(Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("RGB"), dtype=np.float64)
    h = a.shape[0]
    return a[: h // 2].reshape(-1, 3).mean(0), a[h - h // 2:].reshape(-1, 3).mean(0)


def test_a_phone_photo_is_walked_upright(context, server):
    """A portrait JPEG stored sideways with EXIF orientation 6 (as phones save them): the preview and the walk's first
    frame show it upright, sky above ground, as the visitor's own image viewer does."""
    import io
    up = np.zeros((400, 300, 3), np.uint8)
    up[:200], up[200:] = (40, 90, 230), (40, 160, 40)  # blue sky over green ground
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(np.rot90(up, 1))).save(buf, "JPEG", quality=92, exif=exif.tobytes())
    page = open_page(context, server.url)
    page.locator("#ww-upload input[type=file]").set_input_files(
        files=[{"name": "phone.jpg", "mimeType": "image/jpeg", "buffer": buf.getvalue()}])
    page.wait_for_function("() => (document.querySelector('#ww-status')?.innerText || '').includes('phone.jpg')",
                           timeout=60_000)
    page.wait_for_function("() => !!document.querySelector('#ww-preview img')?.complete", timeout=10_000)
    for selector in ("#ww-preview img", "#ww-frame"):
        if selector == "#ww-frame":
            start_walk(page)
            wait_frame_shown(page)
        top, bottom = halves_rgb(page, selector)
        assert top[2] > 150 and top[1] < 130 and bottom[1] > 110 and bottom[2] < 110, (selector, top, bottom)
    page.close()


def test_mouse_look_then_record_and_download_the_walk(context, server, tmp_path):
    import json

    from worldwalk.app.video import read_video

    page = open_page(context, server.url)
    start_walk(page)
    box = page.locator("#ww-view").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()  # drag to look (pointer lock, where the browser grants it, sends the same deltas)
    for i in range(1, 21):
        page.mouse.move(cx + 10 * i, cy, steps=1)
        time.sleep(0.02)
    page.mouse.up()  # (the click also asks for pointer lock: later motion would look around too)
    page.wait_for_function("() => Number(document.querySelector('#ww-hud').dataset.heading) > 5", timeout=60_000)
    page.evaluate("() => document.exitPointerLock()")  # what Esc does: the mouse is the page's again
    page.keyboard.press("Equal")  # + : one step faster, shown in the HUD
    page.wait_for_function("() => document.querySelector('#ww-hud').innerText.includes('1.50 m/s')", timeout=30_000)
    page.get_by_role("button", name="● Record").click()
    page.wait_for_function("() => document.querySelector('#ww-hud').innerText.includes('REC')", timeout=30_000)
    page.keyboard.down("d")
    time.sleep(1.5)
    page.keyboard.up("d")
    page.get_by_role("button", name="■ Stop recording").click()
    page.wait_for_function("() => document.querySelector('#ww-status').innerText.includes('Saved')", timeout=30_000)
    token = page.evaluate("() => window.worldwalk.token")
    got = {}
    for name, file in (("⬇ Video (MP4)", "walk-01.mp4"), ("⬇ Camera path (JSON)", "walk-01.json")):
        link = page.get_by_role("link", name=name)
        assert link.get_attribute("href") == f"worldwalk/download/{token}/{file}"  # the demo's own route
        with page.expect_download(timeout=30_000) as d:
            link.click()
        assert d.value.suggested_filename == file
        got[name] = tmp_path / file
        d.value.save_as(got[name])
    frames, fps = read_video(got["⬇ Video (MP4)"])
    side = json.loads(got["⬇ Camera path (JSON)"].read_text())
    assert fps == 16 and len(frames) >= 6 and len(side["c2w"]) == len(frames)
    assert side["metadata"]["worldwalk_recording"]["preset"] == "test"
    # no server path anywhere in the page a visitor sees, nor in any address in it (what hovering a link shows)
    dom = page.content()
    addresses = page.evaluate("""() => [...document.querySelectorAll('[href], [src], [poster]')]
        .flatMap((e) => [e.href, e.src, e.poster, e.getAttribute('href'), e.getAttribute('src')])
        .filter((a) => typeof a === 'string' && a)""")
    root = server.manager.workdir.parents[1]
    for word in (str(root), str(Path(__file__).resolve().parents[2]), "/tmp/"):
        assert word not in dom, f"the page shows {word}"
        assert not [a for a in addresses if word in a], [a for a in addresses if word in a]
    page.close()


def test_a_third_tab_waits_in_line_until_a_tab_closes(context, server):
    a, b, c = (open_page(context, server.url) for _ in range(3))
    start_walk(a)
    start_walk(b)
    start_walk(c, state="waiting")
    assert "you are 1 in line" in hud(c)["overlay"] and "busy" in status_text(c)
    a.close(run_before_unload=True)  # closing the tab frees its walk (Gradio's unload) ...
    c.wait_for_function("() => document.querySelector('#ww-hud')?.dataset.state === 'live'", timeout=60_000)
    assert server.manager.running() == 2  # ... and the tab in line got its place
    assert "Your turn" in status_text(c)  # the status line follows the walk, not only the overlay
    # the walk ends by itself (here: as an idle one would): the overlay says so once, with why, and so does the status
    server.manager.close(c.evaluate("() => window.worldwalk.token"), "idle for 180 s; it was closed to make room")
    c.wait_for_function("() => document.querySelector('#ww-hud')?.dataset.state === 'ended'", timeout=30_000)
    overlay = hud(c)["overlay"]
    assert overlay.lower().count("ended") == 1 and "idle for 180 s" in overlay, overlay
    assert "Your walk has ended (idle for 180 s" in status_text(c) and "Walking" not in status_text(c)
    b.close()
    c.close()
    end = time.monotonic() + 30
    while server.manager.running() and time.monotonic() < end:
        time.sleep(0.2)
    assert server.manager.running() == 0


def test_ctrl_c_right_after_three_tabs_close_stops_cleanly(browser, tmp_path):
    """Three visitors walk, close their tabs, and the server gets Ctrl+C (SIGINT) a moment later, while their walks are
    still being closed and chunks are still being made: it waits for them, exits with code 0, no abort, nothing left
    in its temporary folder. (Before, 3 of 3 tries aborted: 'terminate called without an active exception'.) The
    tiny preset with two steps keeps the engine busy long enough for that moment to matter."""
    import os
    import select
    import signal
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "worldwalk.app.web", "--random-weights", "--preset", "tiny",
                             "--steps", "2", "--port", "0", "--max-walks", "3"], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        out, url, end = "", None, time.monotonic() + 180
        while url is None and time.monotonic() < end and proc.poll() is None:
            if select.select([proc.stdout], [], [], 1.0)[0]:
                line = proc.stdout.readline()
                out += line
                if line.startswith("worldwalk web demo: "):
                    url = line.split(": ", 1)[1].strip()
        assert url, out
        ctx = browser.new_context()
        pages = [open_page(ctx, url) for _ in range(3)]
        for page in pages:
            start_walk(page)
            page.keyboard.down("w")
        time.sleep(1.0)
        for page in pages:
            page.close(run_before_unload=True)
        time.sleep(0.2)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=60)
        took = time.monotonic() - t0
        ctx.close()
        out += proc.stdout.read()
        print(f"\nstopped in {took:.1f} s after SIGINT")
        assert rc == 0 and "stopped" in out, out
        for bad in ("terminate called", "Traceback", "ERROR", "timeout graceful shutdown"):
            assert bad not in out, out
        assert not list(tmp_path.iterdir()), list(tmp_path.iterdir())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
