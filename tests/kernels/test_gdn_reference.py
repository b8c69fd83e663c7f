"""The two PyTorch forms of the frame-wise GDN scan agree, carry state correctly, and match fla at S = 1."""
import pytest
import torch

from worldwalk.kernels import frame_gdn_scan
from worldwalk.kernels.gdn.naive import gdn_chunked, gdn_recurrent

SHAPES = [  # B, H, T, S, Dk, Dv
    (1, 1, 1, 1, 4, 4),
    (2, 3, 7, 5, 12, 9),
    (1, 2, 13, 17, 16, 16),
    (2, 1, 4, 30, 20, 1),  # the denominator stream: Dv = 1
]


def make(B, H, T, S, Dk, Dv, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.rand(*s, generator=g, dtype=dtype)  # noqa: E731
    # ReLU-like non-negative features scaled by 1/sqrt(Dk*S), as the model feeds them
    q = r(B, H, T, S, Dk)
    k = r(B, H, T, S, Dk) * (Dk * S) ** -0.5
    v = torch.randn(B, H, T, S, Dv, generator=g, dtype=dtype)
    beta = r(B, H, T, S)
    decay = 0.5 + 0.5 * r(B, H, T)
    return q, k, v, beta, decay


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("chunk", [1, 3, 16])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_recurrent_and_chunked_agree(shape, reverse, chunk, dtype, tol, rms):
    q, k, v, beta, decay = make(*shape, dtype)
    state = torch.randn(shape[0], shape[1], shape[4], shape[5], dtype=dtype)
    o1, s1 = gdn_recurrent(q, k, v, beta, decay, state, reverse)
    o2, s2 = gdn_chunked(q, k, v, beta, decay, state, reverse, chunk_size=chunk)
    assert torch.isfinite(o1).all() and torch.isfinite(o2).all()
    assert rms(o2, o1) <= tol
    assert rms(s2, s1) <= tol


@pytest.mark.parametrize("reverse", [False, True])
def test_state_carries_across_calls(reverse, rms):
    """Scanning frames [0, T) in one call equals two calls with the state handed over."""
    q, k, v, beta, decay = make(2, 2, 9, 6, 8, 5, torch.float64)
    whole, s_whole = gdn_recurrent(q, k, v, beta, decay, reverse=reverse)
    cut = 4
    a = lambda t: t[:, :, :cut]  # noqa: E731
    b = lambda t: t[:, :, cut:]  # noqa: E731
    if not reverse:
        o_a, s = gdn_recurrent(a(q), a(k), a(v), a(beta), a(decay))
        o_b, s = gdn_recurrent(b(q), b(k), b(v), b(beta), b(decay), s)
    else:  # reverse: the later part first, its state flows back into the earlier part
        o_b, s = gdn_recurrent(b(q), b(k), b(v), b(beta), b(decay), reverse=True)
        o_a, s = gdn_recurrent(a(q), a(k), a(v), a(beta), a(decay), s, reverse=True)
    assert rms(torch.cat([o_a, o_b], 2), whole) < 1e-12
    assert rms(s, s_whole) < 1e-12


def test_recurrence_by_hand():
    """Two frames, written out with explicit matrices."""
    q, k, v, beta, decay = make(1, 1, 2, 3, 4, 2, torch.float64, seed=3)
    S = torch.zeros(4, 2, dtype=torch.float64)
    outs = []
    for t in range(2):
        K, V, Bd = k[0, 0, t], v[0, 0, t], torch.diag(beta[0, 0, t])
        S = decay[0, 0, t] * (torch.eye(4, dtype=torch.float64) - K.T @ Bd @ K) @ S + K.T @ Bd @ V
        outs.append(q[0, 0, t] @ S)
    o, _ = gdn_recurrent(q, k, v, beta, decay)
    torch.testing.assert_close(o[0, 0], torch.stack(outs), rtol=1e-12, atol=1e-12)
    # reverse is exclusive: the last frame reads nothing, the first reads frame 1 alone
    o_rev, _ = gdn_recurrent(q, k, v, beta, decay, reverse=True)
    assert o_rev[0, 0, 1].abs().max() == 0
    K, V, Bd = k[0, 0, 1], v[0, 0, 1], torch.diag(beta[0, 0, 1])
    torch.testing.assert_close(o_rev[0, 0, 0], q[0, 0, 0] @ (K.T @ Bd @ V), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("T,Dk,Dv", [(1, 8, 8), (11, 16, 7), (33, 12, 12)])
def test_single_token_frames_match_fla_gated_delta_rule(T, Dk, Dv, rms):
    """With S = 1 the frame-wise rule is the token-wise gated delta rule: fla's naive recurrence is an oracle."""
    from fla.ops.gated_delta_rule.naive import naive_recurrent_gated_delta_rule

    q, k, v, beta, decay = make(2, 3, T, 1, Dk, Dv, torch.float32, seed=T)
    k = torch.nn.functional.normalize(k, dim=-1)
    ours, s_ours = gdn_recurrent(q, k, v, beta, decay)
    # fla layout: (B, T, H, D), beta and log-decay g (B, T, H)
    f = lambda t: t[:, :, :, 0].transpose(1, 2)  # noqa: E731
    ref, s_ref = naive_recurrent_gated_delta_rule(
        f(q), f(k), f(v), beta[..., 0].transpose(1, 2), decay.log().transpose(1, 2), scale=1.0,
        output_final_state=True)
    assert rms(ours[:, :, :, 0], ref.transpose(1, 2)) < 1e-5
    assert rms(s_ours, s_ref) < 1e-5


def test_dispatcher_checks_shapes_and_env(monkeypatch, rms):
    q, k, v, beta, decay = make(1, 2, 3, 4, 8, 8, torch.float32)
    with pytest.raises(ValueError, match="beta must be"):
        frame_gdn_scan(q, k, v, beta[..., :2], decay)
    with pytest.raises(ValueError, match="decay must be"):
        frame_gdn_scan(q, k, v, beta, decay[..., None])
    with pytest.raises(ValueError, match="state must be"):
        frame_gdn_scan(q, k, v, beta, decay, torch.zeros(1, 2, 8, 7))
    ref, _ = frame_gdn_scan(q, k, v, beta, decay)
    monkeypatch.setenv("WORLDWALK_KERNELS", "chunked")
    out, _ = frame_gdn_scan(q, k, v, beta, decay)
    assert rms(out, ref) < 1e-5
    monkeypatch.setenv("WORLDWALK_KERNELS", "bogus")
    with pytest.raises(ValueError, match="WORLDWALK_KERNELS"):
        frame_gdn_scan(q, k, v, beta, decay)
