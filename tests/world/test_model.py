"""The world model's two modes, its presets and its input checks."""
import time

import pytest
import torch

from worldwalk.world.model import WorldModel, count_parameters
from worldwalk.world.presets import PRESETS, ModelConfig, get_preset

from test_oracle import random_camera

CFG = get_preset("test")


def inputs(cfg, B=1, T=10, H=3, W=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, cfg.latent_channels, T, H, W, generator=g)
    ts = torch.rand(B, T, generator=g) * 1000
    cam = random_camera(B, T, H, W, seed)
    pl = torch.randn(B, cfg.plucker_channels, T, H, W, generator=g)
    return x, ts, cam, pl


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = WorldModel(CFG).eval()
    # random everything (the training init zeroes the camera branches, which would hide their causality)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    return m


def test_chunk_boundaries(model):
    assert model.chunk_of_frame(11).tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
    assert model.chunk_of_frame(3, frame_offset=4).tolist() == [1, 1, 1]


@pytest.mark.parametrize("cut_chunk", [1, 2])
def test_chunk_causal_ignores_later_chunks(model, cut_chunk):
    """Outputs of chunks <= k do not move when latents, timesteps, cameras or Plücker maps of later chunks change."""
    x, ts, cam, pl = inputs(CFG)
    x2, ts2, cam2, pl2 = inputs(CFG, seed=1)
    first_later = {1: 7, 2: 10}[cut_chunk]  # chunks [0,4) [4,7) [7,10): frames from here on belong to later chunks
    mix = lambda a, b: torch.cat([a[:, :, :first_later], b[:, :, first_later:]], 2) if a.ndim == 5 else \
        torch.cat([a[:, :first_later], b[:, first_later:]], 1)  # noqa: E731
    T = 10 if cut_chunk == 1 else 12
    if cut_chunk == 2:  # extend both clips to 12 frames so there is a chunk after [7, 10)
        x, ts, cam, pl = inputs(CFG, T=12)
        x2, ts2, cam2, pl2 = inputs(CFG, T=12, seed=1)
    with torch.no_grad():
        a = model(x, ts, cam, pl, mode="chunk_causal")
        b = model(mix(x, x2), mix(ts, ts2), mix(cam, cam2), mix(pl, pl2), mode="chunk_causal")
        full = model(mix(x, x2), mix(ts, ts2), mix(cam, cam2), mix(pl, pl2), mode="bidirectional")
    assert a.shape[2] == T
    assert torch.equal(a[:, :, :first_later], b[:, :, :first_later])
    assert (a[:, :, first_later:] - b[:, :, first_later:]).abs().max() > 1e-3  # later chunks did see the change
    # the bidirectional forward of the same clip does look ahead
    assert (full[:, :, :first_later] - b[:, :, :first_later]).abs().max() > 1e-3


def test_one_chunk_is_bidirectional(model, rms):
    """A clip inside the first chunk has no chunk boundary: both modes are the same function."""
    x, ts, cam, pl = inputs(CFG, T=4)
    with torch.no_grad():
        a = model(x, ts, cam, pl, mode="chunk_causal")
        b = model(x, ts, cam, pl, mode="bidirectional")
    assert rms(a, b) < 1e-6


def test_bfloat16_forward_tracks_float32(model, rms):
    x, ts, cam, pl = inputs(CFG, T=7)
    with torch.no_grad():
        ref = model(x, ts, cam, pl, mode="chunk_causal")
        out = model.to(torch.bfloat16)(x, ts, cam, pl, mode="chunk_causal")
    model.float()
    assert out.dtype == torch.bfloat16
    assert rms(out.float(), ref) < 5e-2


def test_integer_timesteps_follow_the_release():
    cfg = ModelConfig(name="t", depth=1, hidden=32, head_dim=16, latent_channels=2, caption_channels=None,
                      temporal_stride=1, integer_timesteps=True)
    m = WorldModel(cfg).eval()
    x = torch.randn(1, 2, 2, 2, 2)
    with torch.no_grad():
        assert torch.equal(m(x, torch.tensor([[972.6, 3.9]])), m(x, torch.tensor([[972.0, 3.0]])))


def test_sana_preset_counts_on_meta_device_quickly():
    t0 = time.perf_counter()
    n = count_parameters("sana-wm-1600m")
    assert time.perf_counter() - t0 < 20
    assert n == 2_661_800_448
    assert 2.5e9 < n < 2.7e9
    with torch.device("meta"):
        m = WorldModel("sana-wm-1600m")
    assert all(p.is_meta for p in m.parameters())
    assert [i for i in range(20) if m.cfg.is_softmax(i)] == [3, 7, 11, 15, 19]


def test_presets_registry():
    assert set(PRESETS) >= {"sana-wm-1600m", "tiny", "test"}
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        get_preset("nope")
    with pytest.raises(ValueError, match="head_dim"):
        get_preset("test", head_dim=20)
    tiny = get_preset("tiny")
    assert tiny.caption_channels is None and tiny.resolution[0] >= 256 and tiny.resolution[1] >= 256


BAD = [
    ("latents", lambda x, ts, cam, pl: (x[0], ts, cam, pl), r"latents: expected a \(B, C, T, H, W\)"),
    ("channels", lambda x, ts, cam, pl: (x[:, :2], ts, cam, pl), "latents: expected 4 channels"),
    ("nan", lambda x, ts, cam, pl: (x.clone().fill_(float("nan")), ts, cam, pl), "latents: contains NaN"),
    ("timesteps", lambda x, ts, cam, pl: (x, ts[:, :3], cam, pl), r"timesteps: expected shape \(B, T\)"),
    ("cam", lambda x, ts, cam, pl: (x, ts, cam[..., :16], pl), r"camera_conditions: expected \(B, T, 20\)"),
    ("cam-inf", lambda x, ts, cam, pl: (x, ts, cam.clone().fill_(float("inf")), pl), "camera_conditions: contains"),
    ("plucker", lambda x, ts, cam, pl: (x, ts, cam, pl[:, :6]), r"plucker: expected \(B, 6·stride, T, H, W\)"),
]


@pytest.mark.parametrize("name,mutate,msg", BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_name_the_argument(model, name, mutate, msg):
    args = mutate(*inputs(CFG, T=5))
    with pytest.raises(ValueError, match=msg):
        model(*args)


def test_bad_mode_and_text(model):
    x, ts, cam, pl = inputs(CFG, T=5)
    with pytest.raises(ValueError, match="mode='causal'"):
        model(x, ts, cam, pl, mode="causal")
    with pytest.raises(ValueError, match="text: preset 'test' has no text branch"):
        model(x, ts, cam, pl, torch.zeros(1, 3, 8))


def test_streaming_chunks_are_checked(model):
    from worldwalk.world.cache import StreamCache

    x, ts, cam, pl = inputs(CFG, T=7)
    c = StreamCache(CFG)
    with pytest.raises(ValueError, match="has 4 frames, got 3"):
        model(x[:, :, :3], ts[:, :3], cam[:, :3], pl[:, :, :3], mode="chunk_causal", cache=c)
    with pytest.raises(ValueError, match="next chunk starts at 0, got 4"):
        model(x[:, :, 4:], ts[:, 4:], cam[:, 4:], pl[:, :, 4:], mode="chunk_causal", frame_offset=4, cache=c)
    with pytest.raises(ValueError, match="needs mode='chunk_causal'"):
        model(x[:, :, :4], ts[:, :4], cam[:, :4], pl[:, :, :4], cache=c)
    with pytest.raises(ValueError, match="window_chunks"):
        StreamCache(CFG, 0)
