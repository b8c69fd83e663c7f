"""Fused GDN preparation (q/k RMSNorm + ReLU + key scale; the β / γ gates): Triton vs reference vs the model's maths."""
import types

import pytest
import torch
import torch.nn.functional as F

from worldwalk.kernels import gdn_gates, qk_norm_relu
from worldwalk.kernels.gdn.prep_naive import gdn_gates_ref, qk_norm_relu_ref

triton = pytest.importorskip("triton")
from worldwalk.kernels.gdn import prep  # noqa: E402

TOL = {torch.float32: 1e-5, torch.bfloat16: 1e-2}


@pytest.mark.parametrize("shape", [(1, 1, 5), (2, 7, 336), (3, 5, 100), (1, 13, 2240), (2, 3, 4, 112)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype,out_dtype", [(torch.float32, torch.float32), (torch.bfloat16, torch.float32),
                                             (torch.bfloat16, torch.bfloat16)], ids=["f32", "bf16-f32", "bf16"])
@pytest.mark.parametrize("relu", [True, False], ids=["relu", "norelu"])
def test_qk_norm_relu_matches_reference(shape, dtype, out_dtype, relu, rms, poison, device):
    g = torch.Generator().manual_seed(sum(shape))
    x = (3 * torch.randn(*shape, generator=g) + 0.5).to(dtype).to(device)
    w = (1 + 0.2 * torch.randn(shape[-1], generator=g)).to(device)
    scale = (112 * 37) ** -0.5
    y = prep.qk_norm_relu(x, w, 1e-6, scale, relu=relu, out_dtype=out_dtype)
    ref = qk_norm_relu_ref(x.double(), w.double(), 1e-6, scale, relu=relu)
    assert y.shape == x.shape and y.dtype == out_dtype and torch.isfinite(y).all()
    assert rms(y, ref) <= TOL[out_dtype]


def test_qk_norm_relu_reference_is_the_models_norm(rms):
    """float32: RMSNorm of world.layers, then ReLU and key scale, exactly as world/attention.py does it."""
    layers = pytest.importorskip("worldwalk.world.layers")
    C, scale = 336, (112 * 9) ** -0.5
    norm = layers.RMSNorm(C, 1e-6)
    with torch.no_grad():
        norm.weight.normal_(1.0, 0.3)
    x = torch.randn(2, 27, C)
    with torch.no_grad():
        model = F.relu(norm(x)) * scale
    assert rms(qk_norm_relu_ref(x, norm.weight, 1e-6, scale), model) <= 1e-6


def gate_params(H, C, seed, dtype=torch.float32, bias=True, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    wb = torch.randn(H, C, generator=g) * C**-0.5
    wg = torch.randn(H, C, generator=g) * 3 * C**-0.5
    bb = torch.randn(H, generator=g) + 2 if bias else None
    bg = torch.randn(H, generator=g) if bias else None
    A_log = 0.5 * torch.randn(H, generator=g)
    dt_bias = torch.linspace(-12, 25, H) if H > 1 else torch.tensor([-5.0])  # softplus far left, middle, far right
    to = lambda t: None if t is None else t.to(device)  # noqa: E731
    return to(wb.to(dtype)), to(bb), to(wg.to(dtype)), to(bg), to(A_log), to(dt_bias)


@pytest.mark.parametrize("B,T,S,C,H", [(1, 1, 1, 16, 1), (2, 3, 37, 60, 5), (1, 2, 100, 336, 3), (1, 1, 7, 224, 20),
                                       (1, 3, 65, 112, 21)], ids=lambda v: str(v))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_gates_match_reference(B, T, S, C, H, dtype, bias, rms, poison, device):
    g = torch.Generator().manual_seed(B * T * S + C)
    x = torch.randn(B, T, S, C, generator=g).to(dtype).to(device)
    params = gate_params(H, C, seed=C, dtype=dtype, bias=bias, device=device)
    beta, decay = prep.gdn_gates(x, *params)
    ref_b, ref_d = gdn_gates_ref(x.double(), *(None if p is None else p.double() for p in params))
    assert beta.shape == (B, H, T, S) and decay.shape == (B, H, T)
    assert beta.dtype == decay.dtype == torch.float32
    assert torch.isfinite(beta).all() and torch.isfinite(decay).all()
    assert rms(beta, ref_b) <= TOL[dtype]
    assert rms(decay, ref_d) <= TOL[dtype]


def test_gates_reference_is_the_models_gates(rms):
    """The reference computes GDNAttention.gates of world/attention.py (float32)."""
    attention = pytest.importorskip("worldwalk.world.attention")
    C, D, T, S = 224, 112, 3, 10
    m = attention.GDNAttention(C, D, 1e-6, 4, 1e-8, legacy=False)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.3)
    x = torch.randn(2, T * S, C)
    with torch.no_grad():
        beta, decay = m.gates(x, types.SimpleNamespace(T=T, S=S))
        rb, rd = gdn_gates_ref(x.view(2, T, S, C), m.beta_proj.weight, m.beta_proj.bias, m.gate_proj.weight,
                               m.gate_proj.bias, m.A_log, m.dt_bias)
    assert rms(rb, beta) <= 1e-6 and rms(rd, decay) <= 1e-6


def test_dispatcher_routes_prep_ops(monkeypatch, rms, device):
    x = torch.randn(1, 2, 9, 60).to(device)
    w = torch.rand(60).to(device)
    params = gate_params(5, 60, seed=0, device=device)
    ref_y = qk_norm_relu_ref(x, w, 1e-6, 0.1)
    ref_b, ref_d = gdn_gates_ref(x, *params)
    for choice in ("reference", "triton"):
        monkeypatch.setenv("WORLDWALK_KERNELS", choice)
        assert rms(qk_norm_relu(x, w, 1e-6, 0.1), ref_y) <= 1e-5
        b, d = gdn_gates(x, *params)
        assert rms(b, ref_b) <= 1e-5 and rms(d, ref_d) <= 1e-5
    with pytest.raises(ValueError, match="weight must be"):
        qk_norm_relu(x, w[:5], 1e-6)
    with pytest.raises(ValueError, match="gdn_gates"):
        gdn_gates(x[0], *params)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
def test_prep_full_size_on_gpu(dtype, rms, poison):
    T, S, C, H = 3, 880, 2240, 20
    x = torch.randn(1, T, S, C, device="cuda").to(dtype)
    w = 1 + 0.1 * torch.randn(C, device="cuda")
    y = prep.qk_norm_relu(x, w, 1e-6, (112 * S) ** -0.5, out_dtype=torch.float32)
    assert rms(y, qk_norm_relu_ref(x.double(), w.double(), 1e-6, (112 * S) ** -0.5)) <= TOL[dtype]
    params = gate_params(H, C, seed=0, dtype=dtype, device="cuda")
    beta, decay = prep.gdn_gates(x, *params)
    rb, rd = gdn_gates_ref(x.double(), *(p.double() for p in params))
    assert rms(beta, rb) <= TOL[dtype] and rms(decay, rd) <= TOL[dtype]
