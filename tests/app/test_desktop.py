"""The desktop explorer under SDL's dummy video driver: posted key events drive a real walk (test preset, untrained
weights), in-process, through the same display loop a person's window runs."""
import os
import time

import numpy as np
import pytest

pygame = pytest.importorskip("pygame", reason="the desktop explorer needs pygame (pip install pygame)")

from app_helpers import render_replay  # noqa: E402
from worldwalk.app import desktop  # noqa: E402
from worldwalk.app.desktop.explorer import Explorer, Options, heading_of  # noqa: E402
from worldwalk.app.desktop.scripted import key_down, key_up, press, type_text, wait_message  # noqa: E402
from worldwalk.app.video import read_video  # noqa: E402
from worldwalk.app.walker import Walker  # noqa: E402
from worldwalk.controls import load_trajectory  # noqa: E402
from worldwalk.world.bundle import random_world  # noqa: E402
from worldwalk.world.sampler import SamplerConfig  # noqa: E402
from worldwalk.world.session import Session  # noqa: E402


def explore_args(*extra):
    return desktop.parse_args(["--random-weights", "--preset", "test", "--steps", "2", "--no-dialog", *extra])


@pytest.fixture
def dummy_video(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    yield
    if pygame.display.get_init():
        pygame.display.quit()


@pytest.fixture
def explorer(dummy_video, tmp_path):
    ex = desktop.build(explore_args("--out-dir", str(tmp_path / "out")))
    ex.opt.scenes_dir = tmp_path / "no-scenes"
    ex.open_window()
    yield ex
    ex.close()


def z_of(ex):
    return float(ex.shown.pose[2, 3])


def settle(ex, timeout=60):
    """Run until every frame on screen was planned after the input now held, and the rig has settled to it."""
    target = ex.walker.session.frame_index + 2 * ex.per_chunk
    assert ex.run(until=lambda: ex.shown.number >= target, timeout=timeout) == "until"


def test_walk_turn_strafe_and_display_rate(explorer):
    ex = explorer
    start = ex.shown.frame.copy()
    assert ex.shown.number == 0 and np.allclose(ex.shown.pose, np.eye(4))
    key_down("w")
    t0, it0 = time.monotonic(), ex.loop.iterations
    assert ex.run(until=lambda: z_of(ex) > 0.8, timeout=60) == "until"
    elapsed = time.monotonic() - t0
    key_up("w")
    hist = [h for h in ex.history if h[0] >= t0]
    numbers = [h[1] for h in hist]
    zs = [h[2] for h in hist]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # every frame, in order, once
    assert np.all(np.diff(zs) >= -1e-9) and zs[-1] > 0.8  # forward is +Z, never back
    assert abs(ex.shown.pose[0, 3]) < 1e-6 and abs(heading_of(ex.shown.pose)) < 1e-6
    assert not np.array_equal(ex.shown.frame, start)  # new frames (what they show: test_frames_move_the_way...)
    assert ex.walker.stats.position[2] >= z_of(ex)  # the generator is at or ahead of the view

    rate = (ex.loop.iterations - it0) / elapsed
    busy = sorted(ex.loop.busy_ms)
    print(f"\n[display loop] test preset, generating: {rate:.1f} Hz over {elapsed:.1f} s "
          f"({ex.loop.iterations - it0} iterations; work per iteration median {busy[len(busy) // 2]:.2f} ms, "
          f"max {busy[-1]:.1f} ms); generated {ex.walker.stats.generated_fps:.1f} fps")
    assert rate >= 30

    h0 = heading_of(ex.shown.pose)
    key_down("right")  # arrows turn: right is a positive heading
    assert ex.run(until=lambda: heading_of(ex.shown.pose) > h0 + 15, timeout=60) == "until"
    key_up("right")
    x0, h1 = ex.shown.pose[0, 3], heading_of(ex.shown.pose)
    key_down("left")
    assert ex.run(until=lambda: heading_of(ex.shown.pose) < h1 - 10, timeout=60) == "until"
    key_up("left")
    # D strafes to the camera's right without turning
    settle(ex)
    h2 = heading_of(ex.shown.pose)
    right = ex.shown.pose[:3, 0].copy()
    p0 = ex.shown.pose[:3, 3].copy()
    key_down("d")
    assert ex.run(until=lambda: float((ex.shown.pose[:3, 3] - p0) @ right) > 0.3, timeout=60) == "until"
    key_up("d")
    assert abs(heading_of(ex.shown.pose) - h2) < 1.0
    assert ex.shown.pose[0, 3] != x0
    assert ex.walker.error is None


def test_display_rate_while_the_default_world_size_generates(dummy_video, tmp_path):
    """The tiny preset (the embedded default's size, 256x256, slower than real time on a CPU): the loop keeps its
    rate while the worker generates, and the HUD says generation is behind instead of the window freezing."""
    ex = desktop.build(desktop.parse_args(["--random-weights", "--preset", "tiny", "--no-dialog",
                                           "--out-dir", str(tmp_path)]))
    ex.open_window()
    try:
        key_down("w")
        behind = []
        t0, it0 = time.monotonic(), ex.loop.iterations
        ex.run(until=lambda: behind.append(ex.behind) and False, timeout=6.0)
        elapsed = time.monotonic() - t0
        rate = (ex.loop.iterations - it0) / elapsed
        busy = sorted(ex.loop.busy_ms)
        st = ex.walker.stats
        print(f"\n[display loop] tiny preset (256x256), generating: {rate:.1f} Hz over {elapsed:.1f} s "
              f"(work per iteration median {busy[len(busy) // 2]:.2f} ms, max {busy[-1]:.1f} ms); "
              + (f"last chunk {st.chunk_ms['total']:.0f} ms = x{ex.realtime_ratio:.2f} real time"
                 if st.chunk_ms else f"the first chunk still generating after {elapsed:.1f} s"))
        assert rate >= 30
        assert any(behind)  # it waited for generation ...
        banner = ex._banner_surface()
        if ex.behind:  # ... and said so
            assert banner is not None
    finally:
        ex.close()


def test_pause_bookmark_and_rewind(explorer):
    ex, w = explorer, explorer.walker
    key_down("w")
    assert ex.run(until=lambda: z_of(ex) > 0.3, timeout=60) == "until"
    press("b")
    wait_message(ex, "bookmark 1")
    mark = w.bookmarks[-1]
    mark_z = float(mark.rig.pose[2, 3])
    assert ex.run(until=lambda: z_of(ex) > mark_z + 0.5, timeout=60) == "until"

    press("space")  # pause: the view stops at once, the generator after the chunk in progress
    ex.run(frames=2)
    assert w.paused
    frozen = ex.shown.number, z_of(ex)
    seen = [w.session.frame_index]
    while len(seen) < 4 or len(set(seen[-3:])) > 1:  # the generator stops too (once its chunk is done)
        ex.run(timeout=0.5)
        seen.append(w.session.frame_index)
        assert len(seen) < 60, seen
    assert (ex.shown.number, z_of(ex)) == frozen
    assert w.session.frame_index - frozen[0] <= 3 * ex.per_chunk  # it stopped within a chunk or so of the view

    press("backspace")  # rewind (while paused): the view goes back to the bookmarked moment
    wait_message(ex, "rewound to bookmark 1")
    assert ex.run(until=lambda: abs(z_of(ex) - mark_z) < 1e-9, timeout=10) == "until"
    assert ex.shown.number == mark.frame_index - 1
    assert np.array_equal(ex.shown.frame, mark.snapshot.last_frame)
    assert w.session.frame_index == mark.frame_index
    press("space")
    assert ex.run(until=lambda: ex.shown.number > mark.frame_index, timeout=60) == "until"
    key_up("w")
    assert mark_z < z_of(ex) < mark_z + 0.5  # walking on from the bookmark, not from where the walk had got to


def test_recording_decodes_with_matching_sidecar(explorer, tmp_path):
    ex, w = explorer, explorer.walker
    shown = {}
    show = ex._show
    ex._show = lambda s: (shown.__setitem__(s.number, s.frame), show(s))
    key_down("w")
    # W is held and the view shown walks before the recording starts (a chunk asked for before W, still queued on a
    # loaded machine, would otherwise open the recording standing still)
    assert ex.run(until=lambda: z_of(ex) > 0, timeout=30) == "until"
    press("r")
    assert ex.run(until=lambda: w.recorder is not None and w.recorder.frames >= 18, timeout=60) == "until"
    press("r")
    wait_message(ex, "saved ")
    key_up("w")
    assert not w.recording
    mp4 = next((tmp_path / "out").glob("walk-*.mp4"))
    frames, fps = read_video(mp4)
    traj = load_trajectory(mp4.with_suffix(".json"))
    n = len(frames)
    assert fps == 16 and frames.shape[1:] == (64, 96, 3)
    assert n >= 18 and n % 6 == 0 and len(traj.c2w) == n
    assert traj.image_size == (96, 64) and traj.fps == 16
    info = traj.metadata["worldwalk_recording"]
    assert info["preset"] == "test" and info["image_sha256"] == w.session.image_sha256
    z = traj.c2w[:, 2, 3]
    assert np.all(np.diff(z) > 0)  # the walk forward, frame by frame
    # the video holds the frames the window showed (same pose -> same frame, up to H.264)
    ex.run(until=lambda: z_of(ex) >= z[-1] - 1e-9, timeout=30)
    by_z = {round(float(h[2]), 9): h[1] for h in ex.history}
    matched = [(f, shown[by_z[round(float(zz), 9)]]) for f, zz in zip(frames, z)
               if round(float(zz), 9) in by_z and by_z[round(float(zz), 9)] in shown]
    assert len(matched) >= n // 2
    err = np.mean([np.abs(a.astype(int) - b).mean() for a, b in matched])
    assert err < 4, err


def test_a_recording_started_mid_walk_replays_exactly(explorer, tmp_path):
    """R pressed a few chunks into a walk (turning while walking): the recording keeps the walk's state at that moment
    (walk-NN.start.safetensors beside the sidecar), and `render --replay` reproduces its frames bit for bit."""
    ex, w = explorer, explorer.walker
    key_down("w")
    key_down("d")
    assert ex.run(until=lambda: ex.shown.number >= 3 * ex.per_chunk, timeout=60) == "until"  # well into the walk
    press("r")
    assert ex.run(until=lambda: w.recorder is not None and w.recorder.frames >= 3 * ex.per_chunk,
                  timeout=60) == "until"
    key_up("d")
    press("r")
    wait_message(ex, "saved ")
    key_up("w")
    mp4 = next((tmp_path / "out").glob("walk-*.mp4"))
    start = mp4.with_name(mp4.stem + ".start.safetensors")
    info = load_trajectory(mp4.with_suffix(".json")).metadata["worldwalk_recording"]
    assert start.is_file() and info["start_snapshot"] == start.name and info["start_frame"] > 1
    frames, _ = read_video(mp4)
    again = tmp_path / "again.mp4"
    r = render_replay(mp4.with_suffix(".json"), again)
    assert r.returncode == 0, r.stderr
    replayed, _ = read_video(again)
    assert len(replayed) == len(frames) and np.array_equal(replayed, frames)
    # the replay is itself a recording from a snapshot, and replays again; without its snapshot it says what is missing
    assert again.with_name("again.start.safetensors").is_file()
    start.rename(tmp_path / "elsewhere.safetensors")
    r = render_replay(mp4.with_suffix(".json"), tmp_path / "third.mp4")
    assert r.returncode == 2 and "start snapshot" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "third.mp4").exists()


def test_bad_input_in_the_window_keeps_the_walk(explorer, tmp_path):
    ex, w = explorer, explorer.walker
    assert ex.run(until=lambda: ex.shown.number > 6, timeout=60) == "until"
    gen = w.generation
    press("n")  # no start scenes: keep the current image, say so
    wait_message(ex, "no start scenes")
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    press("o")  # no dialog here: the in-window path prompt
    ex.run(frames=2)
    assert ex.prompt is not None
    ex.prompt.text = ""
    type_text(str(bad))
    press("return")
    msg = wait_message(ex, "open image failed")
    assert "not a readable image" in msg
    press("l", ctrl=True)
    ex.run(frames=2)
    ex.prompt.text = ""
    type_text(str(bad))
    press("return")
    assert "not a readable walk file" in wait_message(ex, "load walk failed")
    n = ex.shown.number
    assert ex.run(until=lambda: ex.shown.number > n + 6, timeout=60) == "until"  # the walk went on
    assert w.generation == gen and w.error is None


def test_next_scene_and_open_image(explorer, tmp_path):
    from PIL import Image

    ex, w = explorer, explorer.walker
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for i, c in enumerate([(200, 40, 40), (40, 40, 200)]):
        Image.fromarray(np.full((64, 96, 3), c, np.uint8)).save(scenes / f"{i}.png")
    ex.opt.scenes_dir = scenes
    gen = w.generation
    press("n")
    wait_message(ex, "new walk from 0.png")
    ex.run(until=lambda: w.generation != gen and ex.gen == w.generation, timeout=10)
    assert ex.shown.number == 0 and np.allclose(ex.shown.pose, np.eye(4))
    assert w.image == str(scenes / "0.png")
    press("n")
    wait_message(ex, "new walk from 1.png")
    assert w.image == str(scenes / "1.png")
    press("o")
    ex.run(frames=2)
    ex.prompt.text = ""
    type_text(str(scenes / "0.png"))
    press("return")
    assert ex.run(until=lambda: w.image == str(scenes / "0.png"), timeout=30) == "until"


def test_hud_help_screenshot_and_mouse_look(explorer, tmp_path):
    ex = explorer
    press("h")
    press("f12")
    ex.run(frames=3)
    assert ex.help_on
    shots = list((tmp_path / "out").glob("shot-*.png"))
    assert len(shots) == 1 and pygame.image.load(str(shots[0])).get_size() == ex.view_wh
    press("tab")
    ex.run(frames=2)
    assert not ex.hud_on
    press("f12", shift=True)  # the frame alone, at the model's size
    ex.run(frames=2)
    frame_shot = next((tmp_path / "out").glob("frame-*.png"))
    assert pygame.image.load(str(frame_shot)).get_size() == (96, 64)
    # mouse-look: click captures, motion turns (right = positive heading), Esc releases
    from worldwalk.app.desktop.scripted import click, mouse_move
    click()
    ex.run(frames=2)
    assert ex.captured
    h0 = heading_of(ex.shown.pose)
    for _ in range(10):
        mouse_move(25, 0)
        ex.run(frames=1)
    assert ex.run(until=lambda: heading_of(ex.shown.pose) > h0 + 15, timeout=60) == "until"
    press("escape")
    ex.run(frames=2)
    assert not ex.captured
    press("plus")
    wait_message(ex, "speed 1.50 m/s")


class GroundSession(Session):
    """A real session (its state advances as usual) whose frames are replaced by a ray-cast world: a floor striped
    across the walking direction 1 m below the camera and a sky striped by compass direction. Shows whether the frames
    the window plays move the way the camera does."""

    def _render(self, pose):
        W, H = self.size_wh
        fx, fy, cx, cy = np.asarray(self.intrinsics, dtype=np.float64).reshape(-1)[:4]
        v, u = np.mgrid[0:H, 0:W] + 0.5
        d = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)], -1) @ pose[:3, :3].T
        c = pose[:3, 3]
        t = (1.0 - c[1]) / np.where(d[..., 1] > 1e-3, d[..., 1], np.nan)
        zf = c[2] + t * d[..., 2]
        floor = 128 + 100 * np.sin(2 * np.pi * zf / 0.6)
        az = np.degrees(np.arctan2(d[..., 0], d[..., 2]))
        sky = 128 + 100 * np.sin(2 * np.pi * az / 40.0)
        img = np.where(np.isfinite(t) & (t > 0), floor, sky)
        return np.repeat(np.nan_to_num(img)[..., None], 3, -1).clip(0, 255).astype(np.uint8)

    def start(self, image, *a, **k):
        super().start(image, *a, **k)
        self.last_frame = self._render(np.eye(4))
        return self.last_frame[None]

    def step(self, poses):
        super().step(poses)
        out = np.stack([self._render(p) for p in poses])
        self.last_frame = out[-1]
        return out


def best_shift(a, b, max_shift=6):
    """The shift s (pixels) for which b[i] ~ a[i - s], searched in [-max_shift, max_shift]."""
    a, b = a - a.mean(), b - b.mean()
    err = {s: np.mean((np.roll(a, s)[max_shift:-max_shift] - b[max_shift:-max_shift]) ** 2)
           for s in range(-max_shift, max_shift + 1)}
    return min(err, key=err.get)


def test_frames_move_the_way_the_camera_does(dummy_video, tmp_path):
    model, vae = random_world("test", seed=0)
    walker = Walker(GroundSession(model, vae, SamplerConfig(steps=1)), queue_chunks=1,
                           world_desc={"preset": "test", "weights": "random"})
    walker.start(np.zeros((64, 96, 3), np.uint8))
    ex = Explorer(walker, Options(out_dir=tmp_path, dialog=False))
    ex.open_window()
    try:
        shown = []
        show = ex._show
        ex._show = lambda s: (shown.append(s), show(s))
        key_down("w")  # forward: the floor stripes come down the picture
        assert ex.run(until=lambda: len(shown) >= 14, timeout=60) == "until"
        key_up("w")
        cols = slice(20, 76)
        a, b = (s.frame[:, cols, 0].astype(float) for s in (shown[6], shown[12]))
        assert b[50:].std() > 10  # the floor is in the picture
        downs = [best_shift(a[:, j], b[:, j], 4) for j in range(0, a.shape[1], 4)]
        assert np.median(downs) > 0, downs  # rows move down (+v)

        ex.run(timeout=0.5)
        shown.clear()
        key_down("right")  # turning right: the sky stripes slide left
        turning = lambda: [s for s in shown if heading_of(s.pose) > 3]  # noqa: E731 (frames planned with the key)
        assert ex.run(until=lambda: len(turning()) >= 3, timeout=60) == "until"
        key_up("right")
        a, b = (s.frame[:20, :, 0].astype(float).mean(0) for s in turning()[:3:2])
        assert a.std() > 10
        assert best_shift(a, b, 16) < 0  # columns move left (-u)

        # the window shows the frame the right way up and round: the screen is the frame, scaled
        press("tab")  # HUD off
        press("space")  # paused: no "generating…" banner over the view
        ex.run(timeout=0.3)
        ex._draw(time.monotonic(), force=True)
        scr = pygame.surfarray.array3d(ex.screen).transpose(1, 0, 2).astype(float)
        W, H = ex.view_wh
        small = scr.reshape(64, H // 64, 96, W // 96, 3).mean((1, 3))
        got, want = small[8:56, 20:76, 0].ravel(), ex.shown.frame[8:56, 20:76, 0].astype(float).ravel()
        assert np.corrcoef(got, want)[0, 1] > 0.9
        flipped = ex.shown.frame[::-1, ::-1][8:56, 20:76, 0].astype(float).ravel()
        assert np.corrcoef(got, flipped)[0, 1] < 0.5
    finally:
        ex.close()


@pytest.mark.parametrize("extra, message", [
    (["--image", "/nonexistent/x.png"], "no such file"),
    (["--resume", "/nonexistent/x.walk"], "no such file"),
    (["--size", "0"], "--size 0"),
    (["--image", "a.png", "--resume", "b.walk"], "choose one"),
    (["--display-hz", "1"], "--display-hz 1"),
])
def test_bad_command_line_is_one_line(dummy_video, extra, message):
    with pytest.raises(ValueError, match=message) as e:
        desktop.run(explore_args(*extra))
    assert "\n" not in str(e.value)
    assert not pygame.display.get_init()  # no window opened


def test_bad_image_file_is_one_line(dummy_video, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG but not really")
    with pytest.raises(ValueError, match="not a readable image"):
        desktop.run(explore_args("--image", str(bad)))


def test_frames_flag_runs_and_quits(dummy_video, tmp_path, capsys):
    assert desktop.run(explore_args("--frames", "5", "--out-dir", str(tmp_path))) == 0


def test_no_display_is_one_line(monkeypatch):
    if os.name != "posix":
        pytest.skip("X11 only")
    monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
    monkeypatch.setenv("DISPLAY", ":999")
    with pytest.raises(ValueError, match="needs a display"):
        desktop.run(explore_args())
    assert not pygame.display.get_init()


def test_no_display_at_all_is_one_line(monkeypatch):
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(k, raising=False)
    if os.name != "posix" or not __import__("sys").platform.startswith("linux"):
        pytest.skip("Linux only")
    with pytest.raises(ValueError, match="needs a display") as e:
        desktop.run(explore_args())
    assert "\n" not in str(e.value) and not pygame.display.get_init()
