"""The Triton frame-wise GDN kernels (streaming and whole-clip) against the PyTorch reference.

On a CPU they run under TRITON_INTERPRET=1 (see conftest.py) on small, odd shapes; on a GPU the same tests run compiled,
plus the full-size ones marked `gpu`. Every buffer the launchers allocate is NaN-poisoned first.
"""
import pytest
import torch

pytest.importorskip("triton")

from worldwalk.kernels import frame_gdn_scan  # noqa: E402
from worldwalk.kernels.gdn.clip import gdn_clip  # noqa: E402
from worldwalk.kernels.gdn.naive import gdn_chunked, gdn_recurrent  # noqa: E402
from worldwalk.kernels.gdn.stream import gdn_stream  # noqa: E402

KERNELS = {"stream": gdn_stream, "clip": gdn_clip}
TOL = {torch.float32: 1e-5, torch.bfloat16: 1e-2}

SHAPES = [  # B, H, T, S, Dk, Dv
    (1, 1, 1, 1, 4, 4),  # one frame of one token
    (2, 3, 5, 7, 12, 9),  # Dk != Dv, odd everything
    (1, 2, 3, 37, 112, 112),  # the model's head dim (padded to 128 blocks), a streaming chunk of 3 frames
    (2, 1, 4, 30, 20, 1),  # the denominator stream: Dv = 1
    (1, 1, 2, 203, 24, 24),  # S of a few hundred: several token blocks with a tail
    (1, 1, 9, 19, 112, 1),  # denominator at head dim 112, T past the stream/clip switch
]


def make(B, H, T, S, Dk, Dv, seed=0, device="cpu"):
    """Inputs as the model feeds them: ReLU'd q/k, keys scaled by 1/sqrt(Dk·S), β in (0,1), γ in [0.5, 1)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    q = r(B, H, T, S, Dk)
    k = r(B, H, T, S, Dk) * (Dk * S) ** -0.5
    v = torch.randn(B, H, T, S, Dv, generator=g)
    beta = r(B, H, T, S)
    decay = 0.5 + 0.5 * r(B, H, T)
    state = torch.randn(B, H, Dk, Dv, generator=g)
    return [t.to(device) for t in (q, k, v, beta, decay, state)]


def reference(q, k, v, beta, decay, state, reverse):
    """float64 recurrence of exactly the values the kernel saw (bf16 inputs rounded first)."""
    d = lambda t: None if t is None else t.double()  # noqa: E731
    return gdn_recurrent(d(q), d(k), d(v), d(beta), d(decay), d(state), reverse)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("method", ["stream", "clip"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
def test_kernel_matches_reference(shape, reverse, method, dtype, rms, poison, device):
    q, k, v, beta, decay, state = make(*shape, device=device)
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    out = torch.full(v.shape, float("nan"), dtype=dtype, device=device)
    o, s = KERNELS[method](q, k, v, beta, decay, state, reverse, out=out)
    o_ref, s_ref = reference(q, k, v, beta, decay, state, reverse)
    assert o is out and o.dtype == dtype and s.dtype == torch.float32
    assert torch.isfinite(o).all() and torch.isfinite(s).all()
    assert rms(o, o_ref) <= TOL[dtype]
    assert rms(s, s_ref) <= TOL[dtype]


@pytest.mark.parametrize("method", ["stream", "clip"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_zero_initial_state(method, reverse, rms, poison, device):
    q, k, v, beta, decay, _ = make(2, 2, 3, 11, 16, 7, seed=1, device=device)
    o, s = KERNELS[method](q, k, v, beta, decay, None, reverse)
    o_ref, s_ref = reference(q, k, v, beta, decay, None, reverse)
    assert rms(o, o_ref) <= 1e-5 and rms(s, s_ref) <= 1e-5


@pytest.mark.parametrize("method", ["stream", "clip"])
def test_streaming_state_handover(method, rms, poison, device):
    """Chunks [0,4) [4,7) [7,10) scanned one call each, the state carried, equal one call over the clip."""
    q, k, v, beta, decay, state = make(1, 2, 10, 13, 24, 24, seed=2, device=device)
    whole, s_whole = reference(q, k, v, beta, decay, state, False)
    outs, s = [], state
    for a, b in [(0, 4), (4, 7), (7, 10)]:
        o, s = KERNELS[method](*(t[:, :, a:b] for t in (q, k, v, beta, decay)), s)
        outs.append(o)
    assert rms(torch.cat(outs, 2), whole) <= 1e-5
    assert rms(s, s_whole) <= 1e-5


@pytest.mark.parametrize("method", ["stream", "clip"])
def test_chunk_causal_reverse_restart_and_model_layout(method, rms, poison, device, monkeypatch):
    """The model's calls: strided (B,N,H,D) views, and a reverse scan restarted at chunk starts (β = γ = 0 there)."""
    monkeypatch.setenv("WORLDWALK_KERNELS", "triton")
    monkeypatch.setenv("WORLDWALK_GDN", method)
    B, T, S, H, D = 1, 7, 6, 3, 112
    g = torch.Generator().manual_seed(3)
    x = lambda: torch.rand(B, T * S, H * D, generator=g).to(device)  # noqa: E731
    frames = lambda t: t.view(B, T, S, H, D).permute(0, 3, 1, 2, 4)  # (B,H,T,S,D), last axis contiguous  # noqa: E731
    q, k, v = frames(x()), frames(x() * (D * S) ** -0.5), frames(x() - 0.5)
    assert not q.is_contiguous() and q.stride(-1) == 1
    beta = torch.rand(B, T, S, H, generator=g).to(device).permute(0, 3, 1, 2)  # strided too
    decay = 0.5 + 0.5 * torch.rand(B, H, T, generator=g).to(device)
    keep = torch.tensor([1, 1, 1, 1, 0, 1, 1], dtype=torch.float32, device=device)  # chunks [0,4) [4,7)
    beta, decay = beta * keep.view(1, 1, -1, 1), decay * keep.view(1, 1, -1)
    for reverse in (False, True):
        o, s = frame_gdn_scan(q, k, v, beta, decay, reverse=reverse)
        o_ref, s_ref = reference(q, k, v, beta, decay, None, reverse)
        assert rms(o, o_ref) <= 1e-5 and rms(s, s_ref) <= 1e-5
    # the reverse scan inside chunk [0,4) does not see frames 4..6
    o, _ = frame_gdn_scan(q, k, v, beta, decay, reverse=True)
    o_first, _ = reference(*(t[:, :, :4] for t in (q, k, v, beta, decay)), None, True)
    assert rms(o[:, :, :4], o_first) <= 1e-5


@pytest.mark.parametrize("method", ["stream", "clip"])
@pytest.mark.parametrize("T,Dk,Dv", [(1, 8, 8), (11, 16, 7), (20, 12, 12)])
def test_single_token_frames_match_fla_gated_delta_rule(method, T, Dk, Dv, rms, force_triton, poison, device,
                                                        monkeypatch):
    """S = 1: the Triton path equals fla's naive token-wise gated delta rule (an independent oracle)."""
    from fla.ops.gated_delta_rule.naive import naive_recurrent_gated_delta_rule

    monkeypatch.setenv("WORLDWALK_GDN", method)
    q, k, v, beta, decay, _ = make(2, 3, T, 1, Dk, Dv, seed=T)
    k = torch.nn.functional.normalize(k, dim=-1)
    ours, s_ours = frame_gdn_scan(*(t.to(device) for t in (q, k, v, beta, decay)))
    f = lambda t: t[:, :, :, 0].transpose(1, 2)  # fla layout (B, T, H, D)  # noqa: E731
    ref, s_ref = naive_recurrent_gated_delta_rule(
        f(q), f(k), f(v), beta[..., 0].transpose(1, 2), decay.log().transpose(1, 2), scale=1.0,
        output_final_state=True)
    assert rms(ours[:, :, :, 0].cpu(), ref.transpose(1, 2)) < 1e-5
    assert rms(s_ours.cpu(), s_ref) < 1e-5


# ---- full size, GPU only -------------------------------------------------------------------------------------------

SANA = dict(B=1, H=20, S=880, D=112)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method,T", [("stream", 3), ("clip", 3), ("clip", 121), ("stream", 121)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("dv", [112, 1], ids=["num", "den"])
def test_full_size_on_gpu(method, T, dtype, dv, rms, poison):
    B, H, S, D = SANA["B"], SANA["H"], SANA["S"], SANA["D"]
    q, k, v, beta, decay, state = make(B, H, T, S, D, dv, device="cuda")
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    for reverse in (False, True):
        o, s = KERNELS[method](q, k, v, beta, decay, state, reverse)
        d = lambda t: t.double()  # noqa: E731
        o_ref, s_ref = gdn_chunked(d(q), d(k), d(v), d(beta), d(decay), d(state), reverse)
        assert rms(o, o_ref) <= TOL[dtype] and rms(s, s_ref) <= TOL[dtype]
