"""app.web.walks (the manager), live (a visitor's walk) and uploads: per-visitor walks, the cap and the line, idle
timeout, tab close, upload checks (no server)."""
import time

import numpy as np
import pytest
import torch
from PIL import Image

from app_helpers import render_replay, wait_for
from worldwalk.app.web.scenes import drawn_scenes, load_scenes
from worldwalk.app.web.uploads import check_image, parse_seed, prepare_image, work_size
from worldwalk.app.web.walks import Busy, Limits, WalkGone, WalkManager
from worldwalk.world.bundle import random_world
from worldwalk.world.sampler import SamplerConfig
from worldwalk.world.session import Session


@pytest.fixture(scope="module")
def world():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # several walks step at once on a busy 2-core machine
    yield random_world("test", seed=0)
    torch.set_num_threads(n)


@pytest.fixture
def manager(world, tmp_path):
    model, vae = world
    made = []

    def make_session():
        made.append(Session(model, vae, SamplerConfig(steps=1)))
        return made[-1]

    m = WalkManager(make_session, limits=Limits(max_walks=1, idle_timeout=0), workdir=tmp_path / "walks")
    m.made = made
    yield m
    m.shutdown()


def scene():
    return drawn_scenes()[0].image


def test_a_live_walk_publishes_frames_and_walks_where_its_keys_say(manager):
    w = manager.start_live("tab-a", scene(), 0, "Meadow")
    assert w.state == "live" and w.seq == 1  # the start frame
    seq, data = w.frame_after(0)
    assert seq == 1 and data[:2] == b"\xff\xd8"  # a JPEG
    w.set_input(["w", "not-a-key"], n=1)
    assert w.held == {"w"}
    wait_for(lambda: w.frame_after(0)[0] > 8 and w.pose[2, 3] > 0.05, what="frames walking forward")
    w.set_input([], n=0)  # an older message overtaken on the way changes no keys
    assert w.held == {"w"}
    s = w.status()
    assert s["state"] == "live" and s["pos"][2] > 0.05 and len(s["path"]) >= 2 and s["latency_ms"] is not None


def test_the_cap_makes_a_line_and_a_freed_place_goes_to_the_first_in_line(manager):
    a = manager.start_live("tab-a", scene(), 0, "Meadow")
    b = manager.start_live("tab-b", scene(), 0, "Meadow")
    c = manager.start_live("tab-c", scene(), 0, "Meadow")
    assert (a.state, b.state, c.state) == ("live", "waiting", "waiting")
    assert manager.position(b.token) == 1 and manager.position(c.token) == 2
    assert "you are 2 in line" in manager.busy_message(manager.position(c.token))
    assert c.status(manager.position(c.token))["position"] == 2
    with pytest.raises(Busy, match="busy"):
        manager.start_api(None, scene(), 0)
    assert manager.release_owner("tab-a") == 1  # the tab closed
    assert a.closed and a.walker is None
    wait_for(lambda: b.state == "live", what="b to start")
    assert manager.position(c.token) == 1 and c.state == "waiting"
    with pytest.raises(WalkGone, match="tab was closed"):
        manager.get(a.token)
    with pytest.raises(WalkGone):  # walks are only found by their own tab
        manager.get(b.token, owner="tab-c")


def test_idle_walks_end_and_free_their_place(manager):
    manager.limits.idle_timeout = 0.6
    a = manager.start_live("tab-a", scene(), 0, "Meadow")
    b = manager.start_live("tab-b", scene(), 0, "Meadow")
    assert b.state == "waiting"
    thread = a.walker._thread
    wait_for(lambda: a.closed and a.walker is None, timeout=30, what="the idle walk to end")
    assert not thread.is_alive()  # its generator thread is gone, and its Session with it
    assert "idle" in manager.ended[a.token]
    wait_for(lambda: b.state == "live", what="the next in line to start")


def test_held_keys_are_not_idleness(manager):
    manager.limits.idle_timeout = 0.5
    a = manager.start_live("tab-a", scene(), 0, "Meadow")
    a.set_input(["w"])
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        a.frame_after(a.seq)  # the page keeps watching
        time.sleep(0.1)
    assert not a.closed
    a.set_input([])
    wait_for(lambda: a.closed and a.walker is None, timeout=30, what="the walk to end once the keys are released")


def test_restart_keeps_the_place_and_a_bad_image_keeps_the_walk(manager):
    a = manager.start_live("tab-a", scene(), 0, "Meadow")
    again = manager.start_live("tab-a", drawn_scenes()[1].image, 5, "Desert", token=a.token)
    assert again is a and a.seed == 5 and a.label == "Desert" and manager.running() == 1
    with pytest.raises(ValueError, match="not a readable image"):
        manager.start_live("tab-a", b"junk", 1, "junk", token=a.token)
    assert a.state == "live" and a.seed == 5


def test_api_walks_count_against_the_cap(manager):
    w, first = manager.start_api(None, scene(), 3)
    assert first.shape == (1, 64, 96, 3)
    with pytest.raises(Busy):
        manager.start_api(None, scene(), 3)
    b = manager.start_live("tab-b", scene(), 0, "Meadow")
    assert b.state == "waiting"
    manager.close(w.token, "ended by the client")
    wait_for(lambda: b.state == "live", what="the browser walk to start")


def test_check_image(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(scene()).save(good)
    assert check_image(good.read_bytes(), "good.png") == (480, 320)
    with pytest.raises(ValueError, match="empty.png: the file is empty"):
        check_image(b"", "empty.png")
    with pytest.raises(ValueError, match="notes.png: not an image"):
        check_image(b"just some text, not a picture", "notes.png")
    with pytest.raises(ValueError, match="too large"):
        check_image(good.read_bytes(), "good.png", max_bytes=100)
    big = tmp_path / "big.png"
    Image.new("RGB", (9000, 8000)).save(big, compress_level=1)
    with pytest.raises(ValueError, match="too large"):
        check_image(big.read_bytes(), "big.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "tiny.png")
    with pytest.raises(ValueError, match="too small"):
        check_image((tmp_path / "tiny.png").read_bytes(), "tiny.png")


def test_prepare_image_decodes_once_at_the_size_the_walk_uses():
    import io

    def encoded(a, fmt, **kw):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, fmt, **kw)
        return buf.getvalue()

    big = np.zeros((1200, 1600, 3), np.uint8)
    big[..., 0] = np.linspace(0, 255, 1600, dtype=np.uint8)
    for fmt in ("PNG", "JPEG"):
        img = prepare_image(encoded(big, fmt), f"photo.{fmt.lower()}", (96, 64))
        assert img.shape == (384, 512, 3) and img.dtype == np.uint8  # 512 on the long side, aspect kept
        assert abs(int(img[:, -1, 0].mean()) - 255) < 8  # the picture itself, not a crop
    assert work_size((1600, 1200), (1024, 512)) == (1024, 768)  # never below what covers the model's frame
    assert work_size((300, 200), (96, 64)) == (300, 200)  # never enlarged
    assert prepare_image(encoded(scene(), "PNG"), "s.png", (96, 64)).shape == (320, 480, 3)
    cut = encoded(big, "PNG")
    with pytest.raises(ValueError, match=r"^holiday.png: the image is damaged or cut short"):
        prepare_image(cut[: len(cut) // 2], "holiday.png", (96, 64))  # a truncated file is named


def test_parse_seed():
    assert parse_seed(None) == 0 and parse_seed(7.0) == 7 and parse_seed("12") == 12
    for bad in (-1, 1.5, "x", float("nan"), 2**31):
        with pytest.raises(ValueError, match="seed"):
            parse_seed(bad)


def test_scenes(tmp_path):
    drawn = load_scenes(tmp_path)  # no images there: the drawn ones
    assert [s.name for s in drawn] == ["Meadow", "Desert", "Plaza", "Night"]
    assert all(s.image.dtype == np.uint8 and s.image.shape == (320, 480, 3) for s in drawn)
    Image.fromarray(drawn[2].image).save(tmp_path / "town_square.png")
    (tmp_path / "broken.png").write_bytes(b"nope")
    only = load_scenes(tmp_path)
    assert [s.name for s in only] == ["Town square"]


def test_pause_bookmark_rewind_record(manager):
    from worldwalk.app.video import read_video

    a = manager.start_live("tab-a", scene(), 0, "Meadow")
    watch = lambda: a.frame_after(a.seq)  # noqa: E731 - the page pulling frames
    a.set_input(["w"])
    wait_for(lambda: watch() and a.seq > 6, what="frames")
    assert a.toggle_pause() and a.status()["paused"]
    time.sleep(0.8)  # the chunk on screen plays out
    watch()
    n = a.seq
    for _ in range(8):
        watch()
        time.sleep(0.1)
    assert a.seq == n  # paused: nothing new
    assert "bookmark 1" in a.command("bookmark")
    marked = a.walker.bookmarks[-1].rig.pose[2, 3]
    assert not a.toggle_pause()
    assert a.record_start() == "recording…"
    wait_for(lambda: watch() and a.pose[2, 3] > marked + 0.2, what="walking on past the bookmark")
    msg, mp4, side = a.record_stop()
    assert mp4 is not None and side is not None and mp4.name == "walk-01.mp4", msg
    assert msg == "saved as walk-01.mp4" and a.status()["message"] == msg  # no place on the server
    frames, fps = read_video(mp4)
    assert len(frames) >= 6 and frames.shape[1:] == (64, 96, 3) and fps == 16
    # a web recording (started mid-walk, just after a bookmark) replays bit for bit from its start snapshot
    r = render_replay(side, mp4.parent / "again.mp4", threads=1)  # the walks here compute with 1 thread
    assert r.returncode == 0, r.stderr
    again, _ = read_video(mp4.parent / "again.mp4")
    assert len(again) == len(frames) and np.array_equal(again, frames)
    assert "rewound" in a.command("rewind")
    assert a.pose[2, 3] == pytest.approx(marked)  # the HUD is back at the bookmark at once
    wait_for(lambda: watch() and a.status()["path"][-1][1] >= marked, what="walking again after the rewind")
    assert manager.download(a.token, "walk-01.mp4") == mp4 and manager.download(a.token, "walk-01.json") == side
    start = manager.download(a.token, "walk-01.start.safetensors")  # the walk's state when recording began
    assert start is not None and start.parent == mp4.parent
    assert manager.download(a.token, "walk-02.mp4") is None and manager.download("not-a-walk", "walk-01.mp4") is None
    path = a.dir
    manager.close(a.token)
    assert manager.download(a.token, "walk-01.mp4") == mp4  # a walk that ended keeps its recordings a while ...
    manager.sweep_outputs(older_than=0)
    assert manager.download(a.token, "walk-01.mp4") is None and not path.exists()  # ... then they go
    b = manager.start_live("tab-b", scene(), 0, "Meadow")
    path = b.dir
    manager.close(b.token)
    assert not path.exists()  # a walk without recordings leaves nothing behind


def test_the_cap_follows_a_capacity_that_changes(world, tmp_path):
    """With a capacity to follow (a Ray cluster whose workers come and go), max_walks moves with it and the line
    moves when it grows."""
    model, vae = world
    cap = {"n": 1}
    m = WalkManager(lambda: Session(model, vae, SamplerConfig(steps=1)), limits=Limits(max_walks=1, idle_timeout=0),
                    workdir=tmp_path / "walks", capacity=lambda: cap["n"])
    try:
        a = m.start_live("tab-a", scene(), 0, "Meadow")
        b = m.start_live("tab-b", scene(), 0, "Meadow")
        assert (a.state, b.state) == ("live", "waiting")
        cap["n"] = 2  # a worker joined
        assert m.follow_capacity() == 2
        wait_for(lambda: b.state == "live", what="b to start on the new place")
        cap["n"] = 0  # never below one place
        assert m.follow_capacity() == 1 and a.state == b.state == "live"  # walks running go on
    finally:
        m.shutdown()


def test_plus_and_minus_step_the_walking_speed_once_a_press(manager):
    w = manager.start_live("tab-a", scene(), 0, "Meadow")
    walk = w.walker.rig_config.walk_speed
    w.set_input(["faster"], n=1)
    assert w.walker.sync(30) and w.walker.rig.speed == pytest.approx(walk * 1.25)
    w.set_input(["faster"], n=2)  # still held: no second step
    w.set_input(["faster", "w"], n=3)
    assert w.walker.sync(30) and w.walker.rig.speed == pytest.approx(walk * 1.25)
    assert w.walker._input.keys == {"w"}  # the speed keys never reach the rig (nor count as moving)
    w.set_input([], n=4)
    w.set_input(["slower"], n=5)
    w.set_input([], n=6)
    w.set_input(["slower"], n=7)
    assert w.walker.sync(30) and w.walker.rig.speed == pytest.approx(walk / 1.25)
    assert w.status()["speed"] == pytest.approx(round(walk / 1.25, 2))
