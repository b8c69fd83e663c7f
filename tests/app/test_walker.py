"""app.walker.Walker: the live loop every front end drives (test preset, untrained weights)."""
import time

import numpy as np
import pytest

from worldwalk.app.video import read_video
from worldwalk.app.walker import Walker
from worldwalk.controls.rig import InputState
from worldwalk.world.bundle import random_world
from worldwalk.world.sampler import SamplerConfig
from worldwalk.world.session import Session


@pytest.fixture
def walker():
    model, vae = random_world("test", seed=0)
    w = Walker(Session(model, vae, SamplerConfig(steps=2)))
    yield w
    w.close()


def start_image():
    return (np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)


def test_holding_w_walks_forward(walker):
    walker.start(start_image())
    walker.set_input(InputState(keys={"w"}))
    chunks = [walker.wait_chunk(30) for _ in range(3)]
    assert all(c is not None for c in chunks)
    z = np.concatenate([c.poses[:, 2, 3] for c in chunks])
    assert np.all(np.diff(z) >= -1e-9) and z[-1] > 0.1  # forward is +Z
    assert chunks[-1].frames.shape == (6, 64, 96, 3)
    assert walker.stats.position[2] == pytest.approx(z[-1])
    assert len(walker.path) >= 4


def test_pause_stops_generation(walker):
    walker.start(start_image())
    assert walker.wait_chunk(30) is not None
    walker.pause()
    time.sleep(0.5)
    walker._drain()
    n = walker.session.chunk_index
    time.sleep(1.0)
    assert walker.session.chunk_index == n
    walker.resume()
    assert walker.wait_chunk(30) is not None


def test_bookmark_and_rewind(walker):
    walker.start(start_image())
    walker.set_input(InputState(keys={"w"}))
    walker.wait_chunk(30)
    walker.pause()
    time.sleep(0.3)
    walker.bookmark()
    assert walker.sync()
    mark = walker.bookmarks[-1].frame_index
    walker.resume()
    after_mark = [walker.wait_chunk(30) for _ in range(2)]
    walker.pause()
    walker.rewind()
    assert walker.sync() and "rewound" in walker.message
    assert walker.session.frame_index == mark
    walker.resume()
    again = walker.wait_chunk(30)
    first_after = [c for c in after_mark if c.poses[0, 2, 3] == again.poses[0, 2, 3]]
    assert first_after and np.array_equal(first_after[0].frames, again.frames)


def test_recording(walker, tmp_path):
    walker.start(start_image())
    walker.record_start(tmp_path / "rec.mp4")
    assert walker.sync() and walker.recording
    for _ in range(2):
        walker.wait_chunk(30)
    walker.pause()
    walker.record_stop()
    assert walker.sync() and not walker.recording
    frames, fps = read_video(tmp_path / "rec.mp4")
    assert fps == 16 and frames.shape[1:] == (64, 96, 3) and len(frames) >= 12 and len(frames) % 6 == 0
    assert (tmp_path / "rec.json").exists()


def test_bad_image_keeps_the_walk(walker):
    walker.start(start_image())
    walker.wait_chunk(30)
    with pytest.raises(ValueError, match="not a readable image"):
        walker.start(b"not an image")
    assert walker.wait_chunk(30) is not None


def test_a_failing_request_is_reported_and_the_walk_goes_on(walker, tmp_path):
    walker.start(start_image())
    walker.record_start(tmp_path / "no" / "such" / "dir" / "rec.mp4")
    assert walker.sync()
    assert "cannot record" in walker.message or "failed" in walker.message
    walker.bookmark()
    assert walker.sync()
    walker.bookmarks[-1].snapshot.meta["model"] = "another model"  # a rewind target that cannot be restored
    walker.rewind()
    assert walker.sync() and "rewind failed" in walker.message
    assert walker.wait_chunk(30) is not None


@pytest.mark.parametrize("replan", [True, False])
def test_releasing_the_keys_stops_at_the_chunk_on_screen(replan):
    """W held until the queue is full of forward chunks, then released: with re-planning the next chunk the display
    takes stands still where the chunk on screen ended (the queued forward chunks were dropped and made again); without
    it, the queued ones walk on."""
    model, vae = random_world("test", seed=0)
    w = Walker(Session(model, vae, SamplerConfig(steps=1)), queue_chunks=2, replan=replan)
    try:
        w.start(start_image())
        w.set_input(InputState(keys={"w"}))
        on_screen = w.wait_chunk(30)
        end = time.monotonic() + 30
        while w.queued < 2 and time.monotonic() < end:
            time.sleep(0.01)
        assert w.queued == 2
        w.set_input(InputState())  # released
        time.sleep(0.3)
        nxt, after = w.wait_chunk(30), w.wait_chunk(30)
        assert nxt.index == on_screen.index + 1 and after.index == nxt.index + 1
        z0 = on_screen.poses[-1, 2, 3]
        full_step = on_screen.poses[-1, 2, 3] - on_screen.poses[-2, 2, 3]  # walking speed, metres per frame
        print("moved after release", nxt.poses[-1, 2, 3] - z0, after.poses[-1, 2, 3] - z0, "full step", full_step)
        if replan:
            assert w.replans >= 2
            # the rig eases to a stop within the next chunk, then stands still
            assert nxt.poses[-1, 2, 3] - nxt.poses[-2, 2, 3] < 0.25 * full_step
            assert after.poses[-1, 2, 3] - nxt.poses[-1, 2, 3] < 0.5 * full_step
            w.bookmark()
            assert w.sync()
            assert w.bookmarks[-1].frame_index == 1 + (after.index + 1) * len(after.poses)  # the chunk on screen
        else:  # the queued chunks were planned with W held: they walk on at full speed
            assert w.replans == 0
            assert nxt.poses[-1, 2, 3] - nxt.poses[-2, 2, 3] > 0.9 * full_step
    finally:
        w.close()


def test_input_that_changes_faster_than_a_chunk_never_starves_the_display():
    """W held while D is pressed and released every few milliseconds (faster than a chunk is made): only a stop drops
    queued chunks, so the walk keeps coming."""
    model, vae = random_world("test", seed=0)
    w = Walker(Session(model, vae, SamplerConfig(steps=1)), queue_chunks=1)
    try:
        w.start(start_image())
        got, end, d = [], time.monotonic() + 30, False
        while len(got) < 4 and time.monotonic() < end:
            d = not d
            w.set_input(InputState(keys={"w", "d"} if d else {"w"}))
            c = w.take(0.005)
            if c is not None:
                got.append(c)
        assert len(got) == 4 and w.replans == 0
    finally:
        w.close()


def test_releasing_the_keys_while_a_chunk_is_made_for_a_waiting_display():
    """The display waits for the next chunk (queue empty) and W is released while it is being made: the chunk planned
    with W is not handed over; the one that comes eases to a stop."""
    import threading

    class Signalling(Session):  # tells when a chunk is being made (its input was read just before)
        making = threading.Event()

        def step(self, poses):
            self.making.set()
            return super().step(poses)

    model, vae = random_world("test", seed=0)
    w = Walker(Signalling(model, vae, SamplerConfig(steps=1)), queue_chunks=1)
    try:
        w.start(start_image())
        w.set_input(InputState(keys={"w"}))
        for _ in range(2):
            w.take(30)
        while w.queued == 0:  # the next chunk, planned with W, waits in the queue
            time.sleep(0.005)
        Signalling.making.clear()
        on_screen = w.take(30)  # the display takes it: the worker plans the next one with W still held
        assert Signalling.making.wait(30)
        w.set_input(InputState())  # released while that one is being made
        full_step = on_screen.poses[-1, 2, 3] - on_screen.poses[-2, 2, 3]
        nxt = w.take(30)
        assert nxt.index == on_screen.index + 1
        assert w.replans >= 1
        assert nxt.poses[-1, 2, 3] - nxt.poses[-2, 2, 3] < 0.25 * full_step
    finally:
        w.close()
