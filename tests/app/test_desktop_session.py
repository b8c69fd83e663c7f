"""Walk files (.walk): saved from one explorer, reopened in another, the walk goes on exactly as it would have."""
import json

import numpy as np
import pytest

pygame = pytest.importorskip("pygame", reason="the desktop explorer needs pygame (pip install pygame)")

from worldwalk.app import desktop  # noqa: E402
from worldwalk.app.desktop.scripted import key_down, press, type_text, wait_message  # noqa: E402
from worldwalk.app.desktop.walkfile import load_walk, rig_from_dict, rig_to_dict  # noqa: E402
from worldwalk.controls.rig import InputState, Rig  # noqa: E402


def explore_args(*extra):
    return desktop.parse_args(["--random-weights", "--preset", "test", "--steps", "2", "--no-dialog", *extra])


@pytest.fixture(autouse=True)
def dummy_video(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    yield
    if pygame.display.get_init():
        pygame.display.quit()


def recording_shows(ex):
    """Keep every frame the window shows: {frame number: (frame, pose)}."""
    shown = {}
    show = ex._show
    ex._show = lambda s: (shown.__setitem__(s.number, (s.frame, s.pose)), show(s))
    return shown


def test_rig_round_trip_is_exact():
    rig = Rig()
    rig.update(InputState(keys={"w", "right"}, mouse_dx=13, mouse_dy=-4), 0.0)
    rig.advance(7)
    rig.speed_up()
    again = rig_from_dict(json.loads(json.dumps(rig_to_dict(rig))))
    for r in (rig, again):
        r.update(InputState(keys={"a", "up"}), 0.0)
    assert np.array_equal(rig.advance(12), again.advance(12))
    assert again.speed == rig.speed


def test_save_then_resume_goes_on_identically(tmp_path):
    out = tmp_path / "out"
    a = desktop.build(explore_args("--out-dir", str(out), "--seed", "5"))
    a.open_window()
    try:
        shown_a = recording_shows(a)
        key_down("w")
        key_down("right")
        assert a.run(until=lambda: a.shown.number >= 14, timeout=60) == "until"
        press("space")  # pause, then save between two chunks
        press("s", ctrl=True)
        wait_message(a, "saved walk")
        walk = a.last_walk
        saved = load_walk(walk)
        k = saved.frame_index  # the next chunk starts at this frame number
        path_at_save = list(saved.path)
        press("space")
        assert a.run(until=lambda: k + 5 in shown_a, timeout=60) == "until"
    finally:
        a.close()
    assert walk.suffix == ".walk" and walk.parent == out
    assert saved.meta["seed"] == 5 and saved.meta["world"]["preset"] == "test" and len(path_at_save) >= 3

    b = desktop.build(explore_args("--resume", str(walk), "--out-dir", str(out)))
    b.open_window()
    try:
        shown_b = recording_shows(b)
        assert b.walker.paused  # a resumed walk waits for Space
        assert b.shown.number == k - 1 and np.array_equal(b.shown.frame, saved.snapshot.last_frame)
        assert np.array_equal(b.shown.pose, shown_a[k - 1][1])
        assert b.walker.path == path_at_save
        key_down("w")
        key_down("right")
        b.run(frames=3)
        press("space")
        assert b.run(until=lambda: k + 5 in shown_b, timeout=60) == "until"
        for n in range(k, k + 6):  # the whole next chunk: same poses, same pixels
            assert np.array_equal(shown_b[n][1], shown_a[n][1]), n
            assert np.array_equal(shown_b[n][0], shown_a[n][0]), n
        assert b.walker.session.seed == 5
        # Backspace comes back to the loaded moment
        press("backspace")
        wait_message(b, "rewound to bookmark 1")
        assert b.run(until=lambda: b.shown.number == k - 1, timeout=10) == "until"
    finally:
        b.close()


def test_load_in_the_window_and_bad_walk_files(tmp_path):
    out = tmp_path / "out"
    ex = desktop.build(explore_args("--out-dir", str(out)))
    ex.open_window()
    try:
        key_down("w")
        assert ex.run(until=lambda: ex.shown.number >= 8, timeout=60) == "until"
        press("s", ctrl=True)
        wait_message(ex, "saved walk")
        walk = ex.last_walk
        frame_at_save = load_walk(walk).frame_index
        assert ex.run(until=lambda: ex.shown.number >= frame_at_save + 12, timeout=60) == "until"

        # a damaged file: a message, and the walk goes on
        bad = tmp_path / "bad.walk"
        bad.write_bytes(b"garbage" * 10)
        press("l", ctrl=True)
        ex.run(frames=2)
        assert ex.prompt is not None and ex.prompt.text == str(walk)  # offers the last saved walk
        ex.prompt.text = ""
        type_text(str(bad))
        press("return")
        assert "not a readable walk file" in wait_message(ex, "load walk failed")
        n = ex.shown.number
        assert ex.run(until=lambda: ex.shown.number > n + 3, timeout=60) == "until"

        # the good one: back to where it was saved, paused
        press("l", ctrl=True)
        ex.run(frames=2)
        press("return")
        wait_message(ex, f"at frame {frame_at_save}")
        assert ex.run(until=lambda: ex.shown.number == frame_at_save - 1, timeout=10) == "until"
        assert ex.walker.paused and ex.walker.session.frame_index == frame_at_save
    finally:
        ex.close()


def test_resume_with_another_model_or_a_bad_file_is_one_line(tmp_path):
    ex = desktop.build(explore_args("--out-dir", str(tmp_path)))
    ex.open_window()
    try:
        ex.run(until=lambda: ex.shown.number >= 6, timeout=60)
        press("s", ctrl=True)
        wait_message(ex, "saved walk")
        walk = ex.last_walk
    finally:
        ex.close()
    # same file, another world: refused before any window opens
    with pytest.raises(ValueError, match="another model") as e:
        desktop.run(explore_args("--resume", str(walk), "--preset", "tiny"))
    assert "\n" not in str(e.value) and not pygame.display.get_init()
    notes = tmp_path / "notes.walk"
    notes.write_text("{}")
    with pytest.raises(ValueError, match="not a readable walk file"):
        desktop.run(explore_args("--resume", str(notes)))
