"""One forward per chunk (cfg.recycle, issue 25): streaming == one-shot, one forward a chunk, exact snapshots,
training."""
import types

import numpy as np
import pytest
import torch

from worldwalk.controls import rays
from worldwalk.world.cache import StreamCache
from worldwalk.world.model import WorldModel, recycled_inputs
from worldwalk.world.presets import get_preset
from worldwalk.world.sampler import SamplerConfig
from worldwalk.world.session import Session
from worldwalk.world.vae import CausalVAE

from train_checks import params_without_grad  # noqa: E402  (tests/world, on the path as rootdir-less tests)


def make_model(seed=0, recycle=True):
    torch.manual_seed(seed)
    m = WorldModel(get_preset("test", recycle=recycle)).init_weights()
    with torch.no_grad():  # wake up the zero-initialised branches (the recycled input too) so every path matters
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m.eval()


def clip_inputs(cfg, T, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = cfg.latent_hw
    c2w = torch.eye(4).repeat(1, 1 + (T - 1) * cfg.temporal_stride, 1, 1)
    c2w[0, :, 2, 3] = torch.linspace(0, 1, c2w.shape[1])
    intr = torch.tensor([0.9, 0.9, 0.5, 0.5]) * torch.tensor([w, h, w, h])
    intr = intr.expand(1, c2w.shape[1], 4)
    cc = rays.camera_conditions(c2w, intr, cfg.temporal_stride)
    pl = rays.plucker_raymaps(c2w, intr, cfg.latent_hw, cfg.temporal_stride)
    z = torch.randn(1, cfg.latent_channels, T, h, w, generator=g)
    return z, cc, pl, g


def test_recycled_inputs_shift_by_one_chunk():
    cfg = get_preset("test", recycle=True)  # chunks [0, 4), [4, 7), [7, 10)
    z = torch.arange(10.0).view(1, 1, 10, 1, 1)
    r = recycled_inputs(cfg, z)
    assert r.flatten().tolist() == [0, 0, 0, 0, 1, 2, 3, 4, 5, 6]


def test_streaming_matches_one_shot(rms):
    """Each chunk's one forward at its own noise level writes the cache: streaming == the one-shot chunk-causal
    forward over the clip with every chunk at those levels and the recycled inputs shifted by one chunk."""
    model = make_model()
    cfg = model.cfg
    z, cc, pl, g = clip_inputs(cfg, 10)
    gen = torch.randn(z.shape, generator=g)  # stand-in for what each chunk generated (the recycled input)
    ts = torch.zeros(1, 10)
    ts[:, 1:4], ts[:, 4:7], ts[:, 7:] = 1000.0, 700.0, 400.0
    with torch.no_grad():
        one = model(z, ts, cc, pl, mode="chunk_causal", recycled=recycled_inputs(cfg, gen))
        cache, parts = StreamCache(cfg, window_chunks=1), []
        rec = recycled_inputs(cfg, gen)
        for b, e in [(0, 4), (4, 7), (7, 10)]:
            parts.append(model(z[:, :, b:e], ts[:, b:e], cc[:, b:e], pl[:, :, b:e], mode="chunk_causal",
                               frame_offset=b, cache=cache, write_cache=True, recycled=rec[:, :, b:e]))
    assert rms(torch.cat(parts, 2), one) <= 1e-5
    with pytest.raises(ValueError, match="recycled: expected"):
        model(z, ts, cc, pl, mode="chunk_causal", recycled=gen[:, :, :3])
    with pytest.raises(ValueError, match="no recycled input"):
        make_model(recycle=False)(z, ts, cc, pl, mode="chunk_causal", recycled=gen)


def test_zero_recycled_input_starts_as_the_two_pass_model():
    from worldwalk.world.train.world import convert_blocks

    base = make_model(recycle=False)
    model = WorldModel(get_preset("test", recycle=True)).init_weights(torch.Generator().manual_seed(1))
    convert_blocks(model, base)
    assert model.recycle_embedder.proj.weight.abs().sum() == 0
    z, cc, pl, g = clip_inputs(base.cfg, 7)
    ts = torch.full((1, 7), 500.0)
    with torch.no_grad():
        a = base(z, ts, cc, pl, mode="chunk_causal")
        b = model.eval()(z, ts, cc, pl, mode="chunk_causal", recycled=torch.randn(z.shape, generator=g))
    torch.testing.assert_close(a, b)


def poses(k, n):
    out = np.tile(np.eye(4), (n, 1, 1))
    out[:, 2, 3] = 0.05 * (np.arange(n) + 1 + k * n)
    return out


@pytest.mark.parametrize("steps", [1, 2])
def test_session_makes_one_forward_per_step_and_snapshots_exactly(steps):
    model, vae = make_model(), CausalVAE("test-vae").eval()
    s = Session(model, vae, SamplerConfig(steps=steps), window_chunks=1)
    calls = []
    hook = model.register_forward_hook(lambda m, args, kw, out: calls.append(kw.get("write_cache")), with_kwargs=True)
    img = (np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)
    s.start(img, seed=3)
    n = s.frames_per_step
    s.step(poses(0, n))
    assert calls == [False] * (steps - 1) + [True]  # the sampler's last forward writes the cache; no clean forward
    assert "cache_write" not in s.last_timing
    assert s.recycled.shape == (1, model.cfg.latent_channels, model.cfg.chunk_frames, *model.cfg.latent_hw)
    snap = s.snapshot()
    assert "recycled" in snap.tensors
    a = [s.step(poses(k, n)) for k in (1, 2)]
    s.restore(snap)
    b = [s.step(poses(k, n)) for k in (1, 2)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    hook.remove()
    # a snapshot without the recycled latents (damaged) is refused and changes nothing
    del snap.tensors["recycled"]
    before = s.snapshot()
    with pytest.raises(ValueError, match="recycled latents"):
        s.restore(snap)
    assert all(torch.equal(before.tensors[k], v) for k, v in s.snapshot().tensors.items())


def test_recycle_loss_reaches_every_parameter():
    from worldwalk.world.train.world import recycle_loss

    cfg = get_preset("test", recycle=True)
    model = WorldModel(cfg).init_weights(torch.Generator().manual_seed(0)).train()
    with torch.no_grad():
        model.final_layer.linear.weight.normal_(0, 0.05)
    z, cc, pl, _ = clip_inputs(cfg, 10)
    z, cc, pl = z.expand(2, -1, -1, -1, -1).contiguous(), cc.expand(2, -1, -1), pl.expand(2, -1, -1, -1, -1)
    a = types.SimpleNamespace(self_context=0.5, sigma_one=0.5, sigma_shift=3.0, bf16=False)
    losses = recycle_loss(model, z, cc, pl, torch.Generator().manual_seed(1), a)
    assert len(losses) == 3 and all(np.isfinite(losses))
    missing = params_without_grad(model)
    assert not missing, missing
    assert model.recycle_embedder.proj.weight.grad.abs().sum() > 0
