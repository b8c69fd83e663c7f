"""Our bidirectional forward matches diffusers' independent port of the official model on a shared random state dict."""
import pytest
import torch
from scipy.spatial.transform import Rotation

from worldwalk.world.model import WorldModel
from worldwalk.world.presets import ModelConfig

from oracle import build_oracle, exact_softmax_attention, to_diffusers_key

SMALL = ModelConfig(name="oracle-small", depth=4, hidden=64, head_dim=32, latent_channels=8, caption_channels=16,
                    temporal_stride=2, ffn_ratio=2.0, integer_timesteps=True, legacy_tensors=True)
# three heads of 24 (non-power-of-two head dim), 8 blocks (two softmax blocks), stride 3
WIDER = ModelConfig(name="oracle-wider", depth=8, hidden=72, head_dim=24, latent_channels=5, caption_channels=12,
                    temporal_stride=3, ffn_ratio=1.5, integer_timesteps=True, legacy_tensors=True)


def random_state(oracle, seed):
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in oracle.state_dict().items():
        t = torch.randn(v.shape, generator=g) * (0.3 if v.ndim > 1 else 0.5)
        if k.endswith("A_log"):
            t = t - 1.0
        sd[k] = t
    return sd


def random_camera(B, T, H, W, seed):
    g = torch.Generator().manual_seed(seed)
    c2w = torch.eye(4).repeat(B, T, 1, 1)
    c2w[..., :3, :3] = torch.tensor(Rotation.random(B * T, random_state=seed).as_matrix(),
                                    dtype=torch.float32).view(B, T, 3, 3)
    c2w[..., :3, 3] = torch.randn(B, T, 3, generator=g) * 2
    intr = torch.stack([torch.full((B, T), 0.9 * W), torch.full((B, T), 0.95 * W),
                        torch.full((B, T), (W - 1) / 2 + 0.3), torch.full((B, T), (H - 1) / 2 - 0.2)], -1)
    return torch.cat([c2w.reshape(B, T, 16), intr], -1)


# the official head dim (112: RoPE split 40/36/36, camera-branch softmax scale 1/sqrt(128)), two heads
HEAD112 = ModelConfig(name="oracle-head112", depth=4, hidden=224, head_dim=112, latent_channels=16, caption_channels=32,
                      temporal_stride=8, ffn_ratio=1.0, integer_timesteps=True, legacy_tensors=True)

CASES = [  # cfg, B, T, H, W, camera, seed
    (SMALL, 2, 5, 3, 4, True, 0),
    (SMALL, 1, 9, 4, 3, True, 1),  # more than one chunk's worth of frames ([0,4), [4,7), [7,9))
    (SMALL, 2, 2, 2, 5, True, 2),
    (SMALL, 1, 4, 3, 3, False, 3),  # no camera: both camera branches off
    (WIDER, 1, 7, 5, 2, True, 4),  # head dim 24
    (HEAD112, 1, 5, 3, 5, True, 5),
]


@pytest.mark.parametrize("cfg,B,T,H,W,camera,seed", CASES)
def test_bidirectional_matches_diffusers(cfg, B, T, H, W, camera, seed, rms):
    torch.manual_seed(seed)
    oracle = build_oracle(cfg).eval()
    sd = random_state(oracle, seed)
    oracle.load_state_dict(sd)
    ours = WorldModel(cfg).eval()
    ours.load_state_dict({k: sd[to_diffusers_key(k)] for k in ours.state_dict()}, strict=True)

    g = torch.Generator().manual_seed(100 + seed)
    x = torch.randn(B, cfg.latent_channels, T, H, W, generator=g)
    ts = torch.randint(0, 1000, (B, T), generator=g).float()
    ts[:, 0] = 0  # the clean image frame
    cam = random_camera(B, T, H, W, seed) if camera else None
    pl = torch.randn(B, cfg.plucker_channels, T, H, W, generator=g) if camera else None
    L = 6
    y = torch.randn(B, L, cfg.caption_channels, generator=g)
    y_mask = torch.ones(B, L, dtype=torch.long)
    y_mask[-1, 4:] = 0  # padded caption tokens
    with torch.no_grad(), exact_softmax_attention():
        ref = oracle(x, ts[:, None], y[:, None], encoder_attention_mask=y_mask, camera_conditions=cam,
                     chunk_plucker=pl).sample
    with torch.no_grad():
        out = ours(x, ts, cam, pl, y, y_mask, mode="bidirectional")
    assert out.shape == ref.shape
    assert torch.isfinite(out).all()
    err = rms(out, ref)
    assert err <= 1e-4, f"relative RMS error {err:.2e}"
    assert ref.std() > 0.1  # the comparison is not between two near-zero outputs


def test_official_names_and_shapes():
    """`sana-wm-1600m` has exactly the release's tensor names and shapes (diffusers' port at its defaults is the
    release's layout), built on the meta device so nothing is allocated."""
    from diffusers import SanaWMTransformer3DModel

    from worldwalk.world.presets import get_preset

    with torch.device("meta"):
        ours = WorldModel(get_preset("sana-wm-1600m"))
        ref = SanaWMTransformer3DModel()
    a = {to_diffusers_key(k): tuple(v.shape) for k, v in ours.state_dict().items()}
    b = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert sorted(set(a) ^ set(b)) == []
    assert a == b
    assert a["blocks.0.attn.qkv.weight"] == (6720, 2240)
    assert a["blocks.0.mlp.t_conv.weight"] == (2240, 2240, 3, 1)
    assert a["x_embedder.proj.weight"] == (2240, 128, 1, 1, 1)
    assert a["plucker_embedder.proj.weight"] == (2240, 48, 1, 1, 1)
    assert "blocks.3.attn.conv_k.weight" not in a  # softmax blocks have no short conv
