"""Softmax attention against a sink + rolling-window K/V cache, checked against explicit full masked attention."""
import math

import pytest
import torch
import torch.nn.functional as F

from worldwalk.kernels import SinkWindowCache, sink_window_attention


def softmax_attention(q, k, v, scale, mask=None):
    """Written out in float64: softmax(q kᵀ · scale) v, mask True where allowed."""
    logits = (q.double() @ k.double().transpose(-1, -2)) * scale
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    return (logits.softmax(-1) @ v.double()).to(q.dtype)


@pytest.mark.parametrize("D", [112, 16, 40])
@pytest.mark.parametrize("cached", [0, 13])
@pytest.mark.parametrize("scale", [None, 128**-0.5])
def test_sink_window_attention_is_softmax_over_cache_and_chunk(D, cached, scale, rms, device):
    g = torch.Generator().manual_seed(D + cached)
    r = lambda *s: torch.randn(*s, generator=g).to(device)  # noqa: E731
    q, kn, vn = r(2, 3, 7, D), r(2, 3, 7, D), r(2, 3, 7, D)
    kc, vc = (r(2, 3, cached, D), r(2, 3, cached, D)) if cached else (None, None)
    out = sink_window_attention(q, kc, vc, kn, vn, scale=scale)
    k = kn if kc is None else torch.cat([kc, kn], 2)
    v = vn if vc is None else torch.cat([vc, vn], 2)
    ref = softmax_attention(q, k, v, D**-0.5 if scale is None else scale)
    assert out.shape == q.shape and rms(out, ref) <= 1e-5


def test_explicit_scale_equals_the_releases_zero_padding(rms):
    """Head dim 112 zero-padded to 128 with SDPA's default scale == unpadded with scale 1/sqrt(128); not 1/sqrt(112)."""
    g = torch.Generator().manual_seed(0)
    q, kc, vc, kn, vn = (torch.randn(1, 2, n, 112, generator=g) for n in (9, 20, 20, 9, 9))
    pad = lambda t: F.pad(t, (0, 16))  # noqa: E731
    padded = sink_window_attention(pad(q), pad(kc), pad(vc), pad(kn), pad(vn))[..., :112]
    assert rms(sink_window_attention(q, kc, vc, kn, vn, scale=128**-0.5), padded) <= 1e-6
    assert rms(sink_window_attention(q, kc, vc, kn, vn), padded) > 1e-3  # the default scale differs


def stream_tokens(n_chunks, sink_len, chunk_len, D, seed, device):
    """Per chunk: q, k, v (1, 2, L, D)."""
    g = torch.Generator().manual_seed(seed)
    lens = [sink_len] + [chunk_len] * (n_chunks - 1)
    return [tuple(torch.randn(1, 2, L, D, generator=g).to(device) for _ in range(3)) for L in lens], lens


@pytest.mark.parametrize("window", [0, 1, 2])
@pytest.mark.parametrize("D,scale", [(112, 128**-0.5), (24, None)])
def test_cache_equals_full_masked_attention_over_kept_tokens(window, D, scale, rms, device):
    """Chunk i attends to chunk 0 (sink), chunks i−window … i−1 and itself: a full masked attention over the clip."""
    chunks, lens = stream_tokens(7, sink_len=8, chunk_len=6, D=D, seed=window, device=device)
    cache = SinkWindowCache(window)
    outs = []
    for q, k, v in chunks:
        for _ in range(2):  # denoising forwards read the cache and leave it as it was ...
            o = cache.attend(q, k, v, scale=scale)
        outs.append(o)
        cache.push(k, v)  # ... the clean forward writes it
    starts = torch.tensor([0] + lens).cumsum(0)
    chunk_of = torch.cat([torch.full((L,), i) for i, L in enumerate(lens)]).to(device)
    cq, ck = chunk_of[:, None], chunk_of[None, :]
    mask = (ck == 0) | ((ck >= cq - window) & (ck <= cq))
    Q, K, V = (torch.cat([c[j] for c in chunks], 2) for j in range(3))
    ref = softmax_attention(Q, K, V, D**-0.5 if scale is None else scale, mask)
    for i, o in enumerate(outs):
        assert rms(o, ref[:, :, starts[i]:starts[i + 1]]) <= 1e-5, f"chunk {i}"


def test_cache_has_constant_size_and_snapshots(device):
    chunks, _ = stream_tokens(6, sink_len=8, chunk_len=6, D=16, seed=0, device=device)
    cache = SinkWindowCache(window=2)
    sizes = []
    for q, k, v in chunks:
        cache.attend(q, k, v)
        cache.push(k, v)
        sizes.append((cache.kept_tokens, cache.nbytes()))
    assert sizes[2:] == [sizes[2]] * 4  # full from chunk 2 on: sink + 2 chunks, one buffer
    assert sizes[-1][0] == 8 + 2 * 6
    k_kept, v_kept = cache.kept()
    assert k_kept.shape == (1, 2, 20, 16)
    # the kept tokens are the sink and the last two chunks
    want = torch.cat([chunks[0][1], chunks[4][1], chunks[5][1]], 2)
    assert torch.equal(torch.sort(k_kept.flatten(0, 1).flatten(1), dim=1)[0],
                       torch.sort(want.flatten(0, 1).flatten(1), dim=1)[0])
    snap = cache.clone()
    q, k, v = chunks[1]
    before = snap.attend(q, k, v)
    cache.push(k, v)  # moves the original on ...
    assert torch.equal(snap.attend(q, k, v), before)  # ... not the snapshot
    with pytest.raises(ValueError, match="tokens"):
        cache.push(k[:, :, :5], v[:, :, :5])


def test_cache_with_mismatched_query_chunk_falls_back_to_concatenation(rms):
    chunks, _ = stream_tokens(3, sink_len=8, chunk_len=6, D=16, seed=1, device="cpu")
    cache = SinkWindowCache(window=1)
    for q, k, v in chunks:
        cache.attend(q, k, v)
        cache.push(k, v)
    q, k, v = (t[:, :, :4] for t in chunks[1])  # a shorter chunk (e.g. the clip's end)
    kk, vv = cache.kept()
    ref = softmax_attention(q, torch.cat([kk, k], 2), torch.cat([vv, v], 2), 16**-0.5)
    assert rms(cache.attend(q, k, v), ref) <= 1e-5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("scale", [None, 128**-0.5])
def test_fused_backends_head_dim_112_on_gpu(scale, rms):
    """bf16, head dim 112, sana-wm-1600m sizes: SDPA's fused backends agree with the float64 maths."""
    S = 880
    g = torch.Generator(device="cuda").manual_seed(0)
    r = lambda n: torch.randn(1, 20, n, 112, device="cuda", generator=g).to(torch.bfloat16)  # noqa: E731
    q, kn, vn, kc, vc = r(3 * S), r(3 * S), r(3 * S), r(7 * S), r(7 * S)
    out = sink_window_attention(q, kc, vc, kn, vn, scale=scale)
    ref = softmax_attention(q, torch.cat([kc, kn], 2), torch.cat([vc, vn], 2), scale or 112**-0.5)
    assert rms(out, ref) <= 1e-2
    assert math.isfinite(out.float().abs().max().item())
