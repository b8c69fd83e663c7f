"""world.Session: streaming equals one-shot, constant state, exact snapshots, clear errors that change nothing."""
import numpy as np
import pytest
import torch

from worldwalk.controls import rays
from worldwalk.world.model import WorldModel
from worldwalk.world.sampler import SamplerConfig, sample_chunk
from worldwalk.world.session import Session, Snapshot
from worldwalk.world.vae import CausalVAE, VideoVAE


def make_model(seed=0):
    torch.manual_seed(seed)
    m = WorldModel("test").init_weights()
    with torch.no_grad():  # wake up the zero-initialised branches so every path matters
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m.eval()


@pytest.fixture(scope="module")
def parts():
    return make_model(), CausalVAE("test-vae").eval()


def image(seed=0, hw=(50, 70)):
    return (np.random.default_rng(seed).random((*hw, 3)) * 255).astype(np.uint8)


def walk(k, n, speed=0.05, yaw=0.02):
    """Poses of chunk k (n raw frames): forward along +Z while turning."""
    out = np.tile(np.eye(4), (n, 1, 1))
    i = np.arange(n) + 1 + k * n
    c, s = np.cos(yaw * i), np.sin(yaw * i)
    out[:, 0, 0], out[:, 0, 2], out[:, 2, 0], out[:, 2, 2] = c, s, -s, c
    out[:, 2, 3] = speed * i
    return out


def test_streaming_matches_one_shot_chunk_causal(parts, rms):
    """With a window that keeps every chunk, streaming == the one-shot chunk-causal forward over the same noise and
    the same denoising path (the earlier chunks clean at t = 0, the current one at the step's noise level)."""
    model, vae = parts
    sam = SamplerConfig(steps=3, kind="renoise")
    s = Session(model, vae, sam, window_chunks=None)
    s.start(image(), seed=7)
    n = s.frames_per_step
    chunks = 3
    all_poses = [walk(k, n) for k in range(chunks)]
    streamed = []
    for p in all_poses:
        s.step(p)
        streamed.append(s.last_latents)

    # one-shot replay: the whole clip's camera from the full pose list, the same RNG draws
    cfg = model.cfg
    clip = torch.from_numpy(np.concatenate([np.eye(4)[None]] + all_poses)).float()[None]
    intr = torch.from_numpy(s.latent_intrinsics).float().expand(1, clip.shape[1], 4)
    cam_all = rays.camera_conditions(clip, intr, cfg.temporal_stride)
    pl_all = rays.plucker_raymaps(clip, intr, cfg.latent_hw, cfg.temporal_stride)
    g = torch.Generator().manual_seed(7)
    clean = s.z0
    for k in range(chunks):
        T_new = cfg.chunk_frames
        T = clean.shape[2] + T_new

        def velocity(x, sigma):
            ts = torch.zeros(1, T)
            ts[:, -T_new:] = 1000 * sigma
            with torch.no_grad():
                v = model(torch.cat([clean, x], 2), ts, cam_all[:, :T], pl_all[:, :, :T], mode="chunk_causal")
            return v[:, :, -T_new:]

        noise = torch.randn(1, cfg.latent_channels, T_new, *cfg.latent_hw, generator=g)
        z = sample_chunk(velocity, noise, sam, g)
        assert rms(streamed[k], z) <= 1e-4
        clean = torch.cat([clean, streamed[k]], 2)  # continue from the streamed chunk (same inputs for both)


def test_window_bounds_the_state(parts):
    """After 10 and after 250 chunks the carried state has the same size (1-step sampler to keep it quick; anything
    carried that grows by a byte a chunk shows long before 250, and benchmarks/engine.py measures 10 minutes)."""
    model, vae = parts
    s = Session(model, vae, SamplerConfig(steps=1), window_chunks=1)
    s.start(image(), seed=0)
    n = s.frames_per_step
    sizes = {}
    for k in range(1, 251):
        s.step(walk(k, n))
        if k in (10, 250):
            sizes[k] = s.state_nbytes()
    assert sizes[10] == sizes[250]
    assert s.chunk_index == 250 and s.frame_index == 1 + 250 * n


def test_deterministic_and_seeded(parts):
    model, vae = parts
    runs = []
    for seed in (1, 1, 2):
        s = Session(model, vae)
        s.start(image(), seed=seed)
        runs.append(np.concatenate([s.step(walk(k, s.frames_per_step)) for k in range(2)]))
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_snapshot_restore_rewind_fork(parts, tmp_path):
    model, vae = parts
    s = Session(model, vae)
    s.start(image(), seed=5)
    n = s.frames_per_step
    s.step(walk(0, n))
    snap_path = s.snapshot().save(tmp_path / "walk.snap")
    on = [s.step(walk(k, n)) for k in (1, 2, 3)]
    # rewind: restore chunk 1's snapshot (from disk) and replay the same poses -> the same chunks 2, 3, 4
    s.restore(Snapshot.load(snap_path))
    assert s.chunk_index == 1
    again = [s.step(walk(k, n)) for k in (1, 2, 3)]
    assert all(np.array_equal(a, b) for a, b in zip(on, again))
    # fork: a second session from the same snapshot goes its own way without touching the first
    fork = Session(model, vae)
    fork.restore(Snapshot.load(snap_path))
    left = fork.step(walk(1, n, yaw=-0.05))
    assert not np.array_equal(left, on[0])
    assert s.chunk_index == 4


def test_snapshot_of_another_model_is_refused(parts, tmp_path):
    model, vae = parts
    s = Session(model, vae)
    s.start(image())
    snap = s.snapshot()
    other = WorldModel(model.cfg.__class__(**{**model.cfg.to_dict(), "depth": 2}))
    with pytest.raises(ValueError, match="another model"):
        Session(other, vae).restore(snap)
    bad = tmp_path / "bad.snap"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable snapshot"):
        Snapshot.load(bad)


BAD_STEPS = [
    ("count", lambda n: walk(0, n)[:-1], r"expected \(6, 4, 4\)"),
    ("nan", lambda n: np.where(np.eye(4, dtype=bool), np.nan, walk(0, n)), "NaN"),
    ("scaled", lambda n: walk(0, n) * np.array([2, 2, 2, 1])[None, :, None], "rigid"),
    ("shape", lambda n: np.zeros((n, 3, 4)), r"expected \(6, 4, 4\)"),
]


@pytest.mark.parametrize("name,make,msg", BAD_STEPS, ids=[b[0] for b in BAD_STEPS])
def test_bad_poses_leave_the_session_unchanged(parts, name, make, msg):
    model, vae = parts
    ref = Session(model, vae)
    ref.start(image(), seed=3)
    n = ref.frames_per_step
    ref.step(walk(0, n))
    expected = ref.step(walk(1, n))

    s = Session(model, vae)
    s.start(image(), seed=3)
    s.step(walk(0, n))
    before = s.state_nbytes()
    with pytest.raises(ValueError, match=msg):
        s.step(make(n))
    assert s.state_nbytes() == before
    assert np.array_equal(s.step(walk(1, n)), expected)  # as if the bad call never happened


@pytest.mark.parametrize("bad,msg", [
    (b"not an image", "not a readable image"),
    (b"", "empty"),
    ("/nonexistent/picture.png", "no such file"),
    (np.zeros((4, 4, 3), np.uint8), "too small"),
    (np.zeros((20, 20, 3), np.float32), "expected uint8"),
    (12345, "expected a file path"),
])
def test_bad_images(parts, bad, msg):
    model, vae = parts
    s = Session(model, vae)
    s.start(image(), seed=0)
    snap = s.snapshot()
    with pytest.raises(ValueError, match=msg):
        s.start(bad)
    assert s.snapshot().meta == snap.meta  # the running walk is untouched


def test_intrinsics_and_field_of_view(parts):
    model, vae = parts
    s = Session(model, vae)
    s.start(image(hw=(100, 200)), intrinsics=[150.0, 150.0, 100.0, 50.0])
    W, H = s.size_wh
    # resize 200x100 -> cover 96x64: scale 0.64 -> 128x64, crop 16 px left
    np.testing.assert_allclose(s.intrinsics, [150 * 0.64, 150 * 0.64, 100 * 0.64 - 16, 50 * 0.64], rtol=1e-9)
    with pytest.raises(ValueError, match="field of view"):
        s.start(image(), intrinsics=[5.0, 5.0, 35.0, 25.0])  # ~160 degrees
    with pytest.raises(ValueError, match="intrinsics"):
        s.start(image(), intrinsics=[1.0, 2.0])


def test_step_before_start(parts):
    with pytest.raises(RuntimeError, match="start"):
        Session(*parts).step(walk(0, 6))


def test_vae_chunked_decode_equals_whole(rms):
    torch.manual_seed(0)
    vae = CausalVAE("test-vae").eval()
    z = torch.randn(1, 4, 7, 8, 12)
    with torch.no_grad():
        whole = vae.decode_video(z)
        cache = vae.new_decode_cache()
        parts_ = [vae.decode_chunk(z[:, :, a:b], cache) for a, b in [(0, 1), (1, 4), (4, 7)]]
    assert whole.shape == (1, 3, 1 + 2 * 6, 64, 96)
    assert rms(torch.cat(parts_, 2), whole) < 1e-6
    frames = torch.rand(1, 3, 5, 64, 96) * 2 - 1
    assert vae.encode_video(frames).shape == (1, 4, 3, 8, 12)
    # the two decoder stages: the causal one at the latent grid, then per-frame upsampling
    with torch.no_grad():
        feats = vae.decode_time(z, {})
        assert feats.shape[:2] == (1, 13) and rms(vae.decode_space(feats), whole) < 1e-6


def test_vae_encode_next_is_encode_video_after_the_first(rms):
    """CausalVAE.encode_next skips the first frame's pass and, for stills, the repeats' (the session's guess); the
    interface's own version (any VideoVAE) encodes the whole clip. Both give encode_video's latents after the first."""
    torch.manual_seed(0)
    vae = CausalVAE("test-vae").eval()
    s = vae.temporal_stride
    frames = torch.rand(1, 3, 1 + 2 * s, 64, 96) * 2 - 1  # the first, then 2 latents of s frames
    stills = frames[:, :, s::s]  # each latent's last frame
    with torch.no_grad():
        want = vae.encode_video(frames)[:, :, 1:]
        want_still = vae.encode_video(torch.cat([frames[:, :, :1], stills.repeat_interleave(s, 2)], 2))[:, :, 1:]
        for enc in (vae.encode_next, lambda *a, **k: VideoVAE.encode_next(vae, *a, **k)):
            assert enc(frames[:, :, 0], frames[:, :, 1:]).shape == (1, 4, 2, 8, 12)
            assert rms(enc(frames[:, :, 0], frames[:, :, 1:]), want) < 1e-6
            assert rms(enc(frames[:, :, 0], stills, still=True), want_still) < 1e-6
        with pytest.raises(ValueError, match="s·k"):
            vae.encode_next(frames[:, :, 0], frames[:, :, 1:-1])


def test_sampler_schedules():
    assert [round(1000 * s) for s in SamplerConfig().sigmas()] == [1000, 960, 889, 727, 0]
    assert SamplerConfig(timesteps=(1000, 960, 889, 727)).sigmas() == [1.0, 0.96, 0.889, 0.727, 0.0]
    with pytest.raises(ValueError, match="decreasing"):
        SamplerConfig(timesteps=(500, 900)).validate()
    # the flow ODE with an exact velocity field lands on x0
    x0, eps = torch.randn(3, 4), torch.randn(3, 4)
    out = sample_chunk(lambda x, s: eps - x0, eps, SamplerConfig(steps=5, kind="euler"))
    torch.testing.assert_close(out, x0)


def psnr(a, b):
    return 10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def test_session_start_frame_is_closer_to_the_image(parts):
    model, vae = parts
    H, W = model.cfg.resolution
    yy, xx = np.meshgrid(np.linspace(0, 1, H), np.linspace(0, 1, W), indexing="ij")
    img = (np.stack([xx, yy, 1 - xx * yy], -1) * 255).astype(np.uint8)  # smooth: colours the decoder can keep
    # without the start overlay, which would show the image itself
    on, off = Session(model, vae, start_overlay=False), Session(model, vae, colour_match=False, start_overlay=False)
    f_on, f_off = on.start(img)[0], off.start(img)[0]
    assert on.colour_map is not None and off.colour_map is None
    assert psnr(f_on, img) > psnr(f_off, img) + 0.1  # the untrained VAE's colours are far off: the map helps
    n = on.frames_per_step
    a, b = on.step(walk(0, n)), off.step(walk(0, n))
    assert not np.array_equal(a, b)  # every chunk goes through the map, not only the start frame
    assert on.last_latents.equal(off.last_latents)  # the map touches only the decoded pixels


def test_map_travels_with_snapshots(parts, tmp_path):
    model, vae = parts
    s = Session(model, vae)
    s.start(image(4), seed=2)
    n = s.frames_per_step
    s.step(walk(0, n))
    path = s.snapshot().save(tmp_path / "w.snap")
    nxt = s.step(walk(1, n))
    fork = Session(model, vae)
    fork.restore(Snapshot.load(path))
    assert torch.equal(fork.colour_map, s.colour_map)
    assert np.array_equal(fork.step(walk(1, n)), nxt)
    # a snapshot without a map (taken with colour matching off, or before it existed) goes on without one
    snap = Snapshot.load(path)
    del snap.tensors["colour_map"]
    fork.restore(snap)
    assert fork.colour_map is None
    bad = Snapshot.load(path)
    bad.tensors["colour_map"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="colour_map"):
        fork.restore(bad)
