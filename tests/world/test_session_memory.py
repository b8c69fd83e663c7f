"""world.Session with the world memory: the start frame is the image, coming back shows the same world, the state
stays the same size, snapshots replay exactly, and bad combinations are refused (test preset, untrained depth)."""
import numpy as np
import pytest
import torch
from PIL import Image

from worldwalk.world.depth import DepthConfig, DepthNet
from worldwalk.world.memory import MemoryConfig, MemorySettings
from worldwalk.world.sampler import SamplerConfig
from worldwalk.world.session import Session, Snapshot

from test_session import image, make_model, walk
from worldwalk.world.vae import CausalVAE


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    return make_model(), CausalVAE("test-vae").eval(), DepthNet(DepthConfig(widths=(8, 12, 16))).eval()


def session(parts, capacity=1 << 13, **kw):
    model, vae, depth = parts
    ms = MemorySettings(config=MemoryConfig(capacity=capacity), **kw)
    return Session(model, vae, SamplerConfig(steps=1), memory=ms, depth=depth)


def turn_chunk(parts, img, **kw):
    """One turning chunk (yaw 10° to 60°) of a fresh session started on img with these memory settings -> (its frames
    as float64, the memory's coverage before it, the pixels the memory wholly draws, its feather included). A snapshot
    taken before the chunk replays it exactly."""
    from worldwalk.controls.se3 import make_pose, rotation_from_angles
    from worldwalk.world.reproject import feathered

    s = session(parts, **kw)
    s.start(img, seed=1)
    poses = np.stack([make_pose(rotation_from_angles(a, 0.0), np.zeros(3))
                      for a in np.linspace(10.0, 60.0, s.frames_per_step)])
    snap = s.snapshot()
    view = s.memory.render(poses, s.intrinsics, s.size_wh)
    whole = feathered(view.coverage[:, None].float(), s.memory_settings.feather)[:, 0].numpy() >= 1
    first = s.step(poses)
    s.restore(snap)
    assert np.array_equal(s.step(poses), first)
    return first.astype(np.float64), view.coverage.numpy(), whole


def psnr(a, b):
    return 10 * np.log10(255.0**2 / max(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2), 1e-10))


def out_and_back(s, n, k=3, speed=0.1):
    """k chunks forward along +Z, then k back to the start pose (the last frame of the walk is the identity)."""
    fwd = np.tile(np.eye(4), (k * n, 1, 1))
    fwd[:, 2, 3] = speed * (np.arange(k * n) + 1)
    path = np.concatenate([fwd, fwd[-2::-1], np.eye(4)[None]])
    return [s.step(path[i:i + n]) for i in range(0, len(path), n)]


def test_start_frame_is_the_image_and_coming_back_shows_it_again(parts):
    img = image(hw=(64, 96))  # the test model's own size: no crop
    s = session(parts)
    first = s.start(img, seed=3)[0]
    assert psnr(first, img) > 40
    back = out_and_back(s, s.frames_per_step)[-1][-1]
    plain = Session(*parts[:2], SamplerConfig(steps=1), start_overlay=False)
    plain.start(img, seed=3)
    plain_back = out_and_back(plain, plain.frames_per_step)[-1][-1]
    assert psnr(back, img) > 35 and psnr(back, img) > psnr(plain_back, img) + 10


def test_state_is_constant_size_and_the_cap_holds(parts):
    s = session(parts, capacity=7000)  # the start view holds 6,144 of it: turning soon needs evictions
    s.start(image(hw=(64, 96)), seed=0)
    n = s.frames_per_step
    sizes = []
    for k in range(16):
        s.step(walk(k, n, speed=0.05, yaw=0.08))
        sizes.append(s.state_nbytes())
        assert s.memory.count <= 7000
    assert len(set(sizes[2:])) == 1  # from the second chunk on (the softmax window fills in the first two)
    assert int(s.memory.pinned.sum()) > 5000  # the start image stays


def test_snapshots_replay_exactly_with_the_memory(parts, tmp_path):
    s = session(parts)
    s.start(image(), seed=5)
    n = s.frames_per_step
    s.step(walk(0, n, yaw=0.1))
    path = s.snapshot().save(tmp_path / "walk.snap")
    on = [s.step(walk(k, n, yaw=0.1)) for k in (1, 2, 3)]
    s.restore(Snapshot.load(path))
    again = [s.step(walk(k, n, yaw=0.1)) for k in (1, 2, 3)]
    assert all(np.array_equal(a, b) for a, b in zip(on, again))
    assert "memory" in Snapshot.load(path).meta


def test_the_start_view_keeps_the_picture_and_replays(parts, tmp_path):
    """The start view (world/start_view.py) keeps the picture at its own resolution (up to 4x the frame's), is part of
    the state and of snapshots (a walk restored replays exactly), and a snapshot from before it restores without one."""
    small = image(hw=(64, 96))
    big = np.asarray(Image.fromarray(small).resize((192 * 2, 128 * 2), Image.BICUBIC))
    s = session(parts)
    s.start(small, seed=1)
    assert s.start_view is not None and s.start_view.scale == 1
    plain = s.state_nbytes()
    s.start(big, seed=1)
    assert s.start_view is not None and s.start_view.scale == 4
    assert s.state_nbytes() >= plain + big.nbytes - small.nbytes
    n = s.frames_per_step
    s.step(walk(0, n, speed=0.1))
    snap = s.snapshot()
    on = [s.step(walk(k, n, speed=0.1)) for k in (1, 2)]
    s.restore(snap)
    assert s.start_view is not None
    assert all(np.array_equal(a, b) for a, b in zip(on, [s.step(walk(k, n, speed=0.1)) for k in (1, 2)]))
    old = Snapshot({k: v for k, v in snap.tensors.items() if not k.startswith("start_view.")}, snap.meta)
    s.restore(old)
    assert s.start_view is None
    s.step(walk(1, n, speed=0.1))
    off = session(parts, start_scale=0)
    off.start(big, seed=1)
    assert off.start_view is None


def test_bad_combinations_are_refused(parts, tmp_path):
    model, vae, _ = parts
    with pytest.raises(ValueError, match="depth network"):
        Session(model, vae, memory=MemorySettings())
    plain = Session(model, vae, SamplerConfig(steps=1))
    plain.start(image(), seed=1)
    snap = plain.snapshot()
    s = session(parts)
    s.start(image(), seed=2)
    before = s.snapshot()
    with pytest.raises(ValueError, match="no world memory"):
        s.restore(snap)
    after = s.snapshot()
    assert all(torch.equal(before.tensors[k], after.tensors[k]) for k in before.tensors)
    small = session(parts, capacity=100)
    with pytest.raises(ValueError, match="memory.xyz"):
        small.restore(before)


def test_the_seams_colours_touch_only_what_the_memory_did_not_see(parts):
    """MemorySettings.seam (world/seam.py, off by default): in the first chunk of a turning walk (the memory the same
    in both) it changes no pixel well inside what the memory covers, and the colours beside it; with it off, the walk
    is the one without the setting, pixel for pixel. (The start picture's ground colour, world/ground_colour.py, is
    off here: it moves the same low frequencies where the memory does not see, and would take back the seams'.)"""
    img = image(hw=(64, 96))
    runs = {}
    for seam in (None, 0.0, 1.0):
        s = session(parts, ground=0.0) if seam is None else session(parts, seam=seam, ground=0.0)
        s.start(img, seed=5)
        n = s.frames_per_step
        views, frames = [], []
        for k in range(3):
            poses = walk(k, n, speed=0.0, yaw=0.15)
            views.append(s.memory.render(poses, s.intrinsics, s.size_wh, stamp=False).coverage.clone())
            frames.append(s.step(poses))
        runs[seam] = (np.concatenate(frames), torch.cat(views))
    assert np.array_equal(runs[None][0], runs[0.0][0])
    (off, cov), (on, _) = runs[0.0], runs[1.0]
    n = s.frames_per_step
    off, on, cov = off[:n], on[:n], cov[:n]  # the first chunk
    inside = torch.nn.functional.max_pool2d((~cov)[:, None].float(), 33, 1, 16)[:, 0] == 0  # 16 px inside the seen
    diff = np.abs(off.astype(int) - on.astype(int)).max(-1)
    assert inside.any() and diff[inside.numpy()].max() <= 1 and diff[(~cov).numpy()].mean() > 0.5


def test_the_start_view_leaves_out_the_memory_own_depth_edges(parts):
    """What the lift leaves out as a depth edge (MemoryConfig.edge, edge_inv), the start view does not follow either,
    after a restore too; it follows the rays of the pixels the memory settings say (start_grid)."""
    model, vae, depth = parts
    for edge, grid in ((0.05, 4), (0.3, 3)):
        ms = MemorySettings(config=MemoryConfig(capacity=1 << 13, edge=edge, edge_inv=0.01), start_grid=grid)
        s = Session(model, vae, SamplerConfig(steps=1), memory=ms, depth=depth)
        s.start(image(hw=(64, 96)), seed=1)
        assert (s.start_view.cfg.edge, s.start_view.cfg.edge_inv, s.start_view.cfg.grid) == (edge, 0.01, grid)
        snap = s.snapshot()
        s.start(image(hw=(64, 96)), seed=2)
        s.restore(snap)
        assert (s.start_view.cfg.edge, s.start_view.cfg.edge_inv, s.start_view.cfg.grid) == (edge, 0.01, grid)


def test_the_start_picture_depth_goes_through_its_own_median(parts):
    """MemorySettings.start_median: the start picture's depth (the memory's points, the start view, the speed a walk
    starts at) is the network's with a k x k median of its log depth instead of the network's own (0)."""
    from worldwalk.world.depth import median_filter

    model, vae, _ = parts
    torch.manual_seed(1)
    depth = DepthNet(DepthConfig(widths=(8, 12, 16))).eval()
    torch.nn.init.normal_(depth.head.weight, std=0.3)  # a depth that follows the picture: speckle to take out
    px = image(hw=(64, 96))
    views = {}
    for k in (0, 7):
        s = session((model, vae, depth), start_median=k, sheet=0)  # (the sheet would smooth this speckle whole)
        s.start(px, seed=1)
        views[k] = s.start_view.depth
        x = torch.from_numpy(px).permute(2, 0, 1)[None].float() / 127.5 - 1
        raw = depth.predict(x, s.intrinsics, np.eye(4)[None])
        want = raw[0] if k == 0 else median_filter(raw.log()[:, None], k)[0, 0].exp()
        assert torch.allclose(views[k], want)
    assert not torch.equal(views[0], views[7])


def test_a_chunk_lifts_only_its_last_latent_frames(parts):
    """lift_last=k: after a turning chunk, the memory takes what it did not see from the raw frames of the chunk's
    last k latents only (their depth predicted for those alone); 0: from every latent's. A real session, its real
    memory and depth network, watched through their own methods."""
    def lifted(**kw):
        s = session(parts, generated_depth_scale=1, **kw)  # (one predict call a chunk, not one inside another)
        s.start(image(), seed=3)
        n, st = s.frames_per_step, s.stride
        yaw = np.radians(np.arange(1, n + 1) * 6.0)  # 6° a frame: every latent frame sees something new
        poses = np.tile(np.eye(4), (n, 1, 1))
        poses[:, 0, 0], poses[:, 0, 2], poses[:, 2, 0], poses[:, 2, 2] = np.cos(yaw), np.sin(yaw), -np.sin(yaw), \
            np.cos(yaw)
        adds, predicted = [], []
        add, predict = s.memory.add, s._frames_depth.predict  # (the generated frames' network: world/depth.frames_net)
        s.memory.add = lambda rgb, z, c2w, *a, **k: adds.append(np.asarray(c2w)) or add(rgb, z, c2w, *a, **k)
        s._frames_depth.predict = lambda frames, *a, **k: predicted.append(frames.shape[0]) or predict(frames, *a, **k)
        before = s.memory.count
        s.step(poses)
        latent_poses = poses[st - 1::st]
        return adds, predicted, latent_poses, s.memory.count - before

    adds, predicted, latent_poses, grew = lifted(lift_last=1)
    assert len(adds) == 1 and np.allclose(adds[0], latent_poses[-1]) and predicted == [1] and grew > 0
    adds, predicted, latent_poses, _ = lifted(lift_last=0)
    assert len(latent_poses) > 1 and len(adds) == len(latent_poses) and predicted == [len(latent_poses)]
    assert all(np.allclose(a, p) for a, p in zip(adds, latent_poses))


def test_lift_last_must_be_a_count():
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="lift_last"):
            MemorySettings(lift_last=bad).validate()
    assert MemorySettings.from_dict({"lift_last": 2}).lift_last == 2


def test_a_latent_guess_comes_from_its_own_frame_held_still(parts, rms):
    """guess_still (the default): each latent's guess is the encoding of its own (last) raw frame's render, its holes
    filled, held still for its frames after the last frame shown; off: of the render of each of its frames. The
    session's guess against the VAE's whole-clip encoding of both."""
    from worldwalk.kernels.splat import pull_push

    for still in (True, False):
        s = session(parts, guess_still=still, guess_prior=False)  # (the holes as pull-push leaves them)
        s.start(image(), seed=3)
        s.step(walk(0, s.frames_per_step))
        poses, st = walk(1, s.frames_per_step), s.stride
        with torch.inference_mode():
            view = s.memory.render(poses, s.intrinsics, s.size_wh, stamp=False)
            guess, _, levels = s._memory_guess(poses, view)
            filled = pull_push(view.rgb, view.coverage[:, None].float())  # (N, 3, H, W)
            frames = filled[st - 1::st].repeat_interleave(st, 0) if still else filled
            clip = torch.cat([s._unit(s.shown_frame)[None], frames])[None].transpose(1, 2)
            want = s.vae.encode_video(clip)[:, :, 1:]
        assert levels is not None and bool((levels < 1).any())  # the walk's next chunk is seen: a guess is made
        assert guess.shape == want.shape and rms(guess, want) < 1e-5
    assert MemorySettings().guess_still is True
