"""The walking speed a walk starts at (world.Session.depth_ahead -> controls.Rig.fit_speed, in app.walker.Walker):
the shipped default's depth network on a close-up photograph and on the app's own start scene, through a real walk."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from worldwalk.app.walker import Walker
from worldwalk.controls.rig import InputState, RigConfig
from worldwalk.world.bundle import DEFAULT_BUNDLE, load_bundle, load_depth
from worldwalk.world.memory import MemorySettings
from worldwalk.world.sampler import SamplerConfig
from worldwalk.world.session import Session

SCENE = Path(__file__).resolve().parents[2] / "assets" / "scenes" / "world_1.png"


@pytest.fixture(scope="module")
def parts():
    model, vae, extra = load_bundle(DEFAULT_BUNDLE)
    return model, vae, extra, load_depth(DEFAULT_BUNDLE)


def session(parts) -> Session:
    model, vae, extra, depth = parts
    return Session(model, vae, SamplerConfig(**extra["sampler"]), depth=depth,
                   memory=MemorySettings.from_dict(extra.get("memory", {})))


@pytest.fixture(scope="module")
def walker(parts):
    w = Walker(session(parts), queue_chunks=1)
    yield w
    w.close()


def test_a_close_up_starts_slow_and_open_ground_at_walking_pace(walker):
    walk = RigConfig().walk_speed
    walker.start(data.coffee())  # the cup fills the picture, about a metre away
    ahead = walker.session.depth_ahead()
    assert 0.3 < ahead < 2.0
    assert walker.rig.speed == pytest.approx(ahead / RigConfig().ahead_time)
    assert walker.message.startswith(f"speed {walker.rig.speed:.2f} m/s") and "+/-" in walker.message
    walker.set_input(InputState(keys={"w"}))  # what W then walks: at most the fitted speed
    chunks = [walker.wait_chunk(60) for _ in range(2)]
    walker.set_input(InputState())
    z = np.concatenate([c.poses[:, 2, 3] for c in chunks])
    seconds = len(z) / walker.session.cfg.fps
    assert 0 < z[-1] <= walker.rig.speed * seconds + 1e-6
    walker.pause()

    walker.start(str(SCENE))  # the app's own start scene: open ground, the usual pace, no message
    assert walker.session.depth_ahead() > walk * RigConfig().ahead_time
    assert walker.rig.speed == walk and walker.message == ""
    walker.pause()


def test_without_a_depth_network_the_usual_pace():
    from worldwalk.world.bundle import random_world

    model, vae = random_world("test", seed=0)
    w = Walker(Session(model, vae, SamplerConfig(steps=1)))
    try:
        w.start((np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8))
        assert w.session.depth_ahead() is None
        assert w.rig.speed == RigConfig().walk_speed and w.message == ""
    finally:
        w.close()


def test_the_start_picture_depth_is_read_back_after_a_restore(parts):
    s = session(parts)
    s.start(data.coffee())
    snap = s.snapshot()
    before = s.depth_ahead()
    s.start(Image.open(SCENE))
    assert s.depth_ahead() > 2 * before
    s.restore(snap)
    assert s.depth_ahead() == pytest.approx(before)


def test_a_browser_walk_says_why_it_is_slower(parts, tmp_path):
    from worldwalk.app.web.walks import Limits, WalkManager

    m = WalkManager(lambda: session(parts), limits=Limits(max_walks=1, idle_timeout=0), workdir=tmp_path / "walks")
    try:
        w = m.start_live("tab", data.coffee(), 0, "coffee")
        assert w.state == "live" and w.walker.rig.speed < 0.5
        assert f"{w.walker.rig.speed:.2f} m/s" in w.speed_note and "Shift" in w.speed_note
        assert str(tmp_path) not in w.speed_note
        w.restart(np.asarray(Image.open(SCENE).convert("RGB")), 0, "meadow")  # open ground: nothing to say
        assert w.speed_note == "" and w.walker.rig.speed == RigConfig().walk_speed
    finally:
        m.shutdown()
