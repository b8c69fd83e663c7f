"""Times every kernel of `kernels/` against its PyTorch reference and against the roofline.

    python benchmarks/kernel_speed.py                       # on a GPU: sana-wm-1600m shapes (B=1, H=20, D=112, S=880)
    python benchmarks/kernel_speed.py --device cpu          # small shapes, references only (CI checks that it runs)
    python benchmarks/kernel_speed.py --device cpu --interpret   # + the Triton kernels under TRITON_INTERPRET=1 (slow)

Ops (rows): the streaming GDN step of one chunk (numerator, its within-chunk reverse, the Dv = 1 denominator), the
whole-clip GDN scan, the fused q/k RMSNorm+ReLU+key scale, the fused gates, and softmax attention of a chunk against a
sink + window cache (SDPA vs the written-out maths). FLOPs and bytes are counted below per op; the floor is
max(bytes / bandwidth, FLOPs / peak) with the device's peak numbers (--bw-gbs / --tflops override; on a CPU both are
measured with a large copy and a large matmul). Targets on an H100: streaming GDN step within 2x of its memory floor;
whole-clip scan under 1 ms per block for 121 frames x 880 tokens. Prints a markdown table for benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from worldwalk.app.runtime import keep_freed_memory  # noqa: E402

# device peaks: (name fragment, memory GB/s, dense bf16 TFLOP/s, dense tf32 TFLOP/s) — vendor datasheet numbers
PEAKS = [("H200", 4800, 989, 494), ("H100 PCIe", 2000, 756, 378), ("H100", 3350, 989, 494), ("A100", 2039, 312, 156),
         ("L40S", 864, 362, 183), ("RTX 4090", 1008, 165, 83), ("RTX 5090", 1792, 210, 105)]

SIZES = {  # the shapes of sana-wm-1600m, and small ones a CPU (or the Triton interpreter) gets through quickly
    "sana": dict(batch=1, heads=20, head_dim=112, tokens=880, chunk_frames=3, clip_frames=121, sink_frames=4,
                 window_chunks=1),
    "small": dict(batch=1, heads=2, head_dim=112, tokens=96, chunk_frames=3, clip_frames=9, sink_frames=4,
                  window_chunks=1),
}


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sizes", choices=sorted(SIZES), default=None, help="default: sana on cuda, small on cpu")
    for name in SIZES["sana"]:
        ap.add_argument("--" + name.replace("_", "-"), type=int, default=None)
    ap.add_argument("--dtypes", default="float32,bfloat16", help="input dtypes of the GDN / prep ops")
    ap.add_argument("--ops", default="all",
                    help="comma list of: stream,stream_rev,den,clip,clip_rev,norm,gates,attn")
    ap.add_argument("--repeat", type=int, default=None, help="timed runs (default 50 on cuda, 3 on cpu)")
    ap.add_argument("--interpret", action="store_true", help="cpu: also run the Triton kernels, interpreted")
    ap.add_argument("--sweep", action="store_true", help="also time the streaming kernel's block_v choices and the "
                                                         "clip kernel on the streaming chunk")
    ap.add_argument("--bw-gbs", type=float, default=None, help="memory bandwidth for the floor (GB/s)")
    ap.add_argument("--tflops", type=float, default=None, help="matmul peak for the floor (TFLOP/s)")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    a.sizes = a.sizes or ("sana" if a.device.startswith("cuda") else "small")
    for name, val in SIZES[a.sizes].items():
        if getattr(a, name) is None:
            setattr(a, name, val)
    a.repeat = a.repeat or (50 if a.device.startswith("cuda") else 3)
    return a


# ---- timing --------------------------------------------------------------------------------------------------------

def bench(fn, device: str, repeat: int) -> float:
    """Median milliseconds of fn() (GPU: CUDA events around each call after warm-up, L2 flushed between calls)."""
    if device.startswith("cuda"):
        flush = torch.empty(256 * 2**20, dtype=torch.int8, device=device)
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(repeat):
            flush.zero_()
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            torch.cuda.synchronize()
            times.append(s.elapsed_time(e))
        return statistics.median(times)
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def device_peaks(a) -> tuple[str, float, dict[str, float], str]:
    """(device name, bandwidth GB/s, matmul TFLOP/s per kind of tl.dot, where the numbers come from).

    Kinds: "bf16" (bf16 operands), "tf32" (float32 operands rounded to TF32: the state products of bf16 inputs) and
    "tf32x3" (three TF32 products: float32 inputs, a third of the TF32 rate).
    """
    if a.device.startswith("cuda"):
        name = torch.cuda.get_device_name(a.device)
        for frag, bw, bf16, tf32 in PEAKS:  # noqa: B007
            if frag in name:
                if a.tflops:
                    bf16 = tf32 = a.tflops
                return (name, a.bw_gbs or bw, {"bf16": bf16, "tf32": tf32, "tf32x3": tf32 / 3},
                        "datasheet, dense")
        t = a.tflops or 100.0
        return (name, a.bw_gbs or 1000.0, {"bf16": t, "tf32": t, "tf32x3": t},
                "unknown GPU: placeholder peaks, pass --bw-gbs/--tflops")
    name = f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    x = torch.ones(64 * 2**20, dtype=torch.float32)
    y = torch.zeros_like(x)
    copy_ms = bench(lambda: y.copy_(x), "cpu", 5)
    m = torch.randn(1024, 1024)
    mm_ms = bench(lambda: m @ m, "cpu", 5)
    bw = a.bw_gbs or 2 * x.numel() * 4 / copy_ms / 1e6
    tf = a.tflops or 2 * 1024**3 / mm_ms / 1e9
    return name, bw, {"bf16": tf, "tf32": tf, "tf32x3": tf}, "measured here (64M-float copy, 1024^3 fp32 matmul)"


def rel_rms(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return ((a - b).pow(2).mean() / b.pow(2).mean().clamp_min(1e-300)).sqrt().item()


# ---- the ops, with their FLOPs and bytes ---------------------------------------------------------------------------

def gdn_inputs(a, T, Dv, dtype, reverse_restart=False):
    B, H, S, D, dev = a.batch, a.heads, a.tokens, a.head_dim, a.device
    torch.manual_seed(0)
    q = torch.rand(B, H, T, S, D, device=dev).to(dtype)
    k = (torch.rand(B, H, T, S, D, device=dev) * (D * S) ** -0.5).to(dtype)
    v = (torch.randn(B, H, T, S, Dv, device=dev) if Dv > 1 else torch.ones(B, H, T, S, 1, device=dev)).to(dtype)
    beta = torch.rand(B, H, T, S, device=dev)
    decay = 0.9 + 0.1 * torch.rand(B, H, T, device=dev)
    state = None if reverse_restart else torch.randn(B, H, D, Dv, device=dev) * 0.1  # reverse: starts from zero
    return q, k, v, beta, decay, state


def as_f32(x):
    """The reference scans float32 (the model casts q, k, v with .float() before the scan)."""
    return tuple(None if t is None else t.float() for t in x)


def gdn_cost(a, T, Dv, dtype, clip: bool):
    """(FLOPs, bytes) of one scan: bytes = q, k, v, β, γ in + out (v's dtype) + state in/out (float32)."""
    B, H, S, D = a.batch, a.heads, a.tokens, a.head_dim
    es = torch.tensor([], dtype=dtype).element_size()
    bytes_ = B * H * (T * S * (2 * D * es + Dv * es + 4 + Dv * es) + T * 4 + 2 * D * Dv * 4)
    if clip:  # M, B per frame, the serial D x D x Dv step, outputs
        flops = B * H * T * (2 * S * D * (D + Dv) + 2 * D * D * Dv + 2 * S * D * Dv)
    else:  # K S, Kᵀ W, Q S per frame
        flops = B * H * T * 6 * S * D * Dv
    return flops, bytes_


def rows_for(a, have_triton: bool):
    """Yields (op, shape text, dtype, reference fn, triton fn or None, flops, bytes)."""
    from worldwalk.kernels import SinkWindowCache  # noqa: F401  (import check)
    from worldwalk.kernels.gdn.naive import gdn_recurrent
    from worldwalk.kernels.gdn.prep_naive import gdn_gates_ref, qk_norm_relu_ref

    stream = clip = prep = None
    if have_triton:
        from worldwalk.kernels.gdn import clip as clip_mod, prep as prep_mod, stream as stream_mod
        stream, clip, prep = stream_mod.gdn_stream, clip_mod.gdn_clip, prep_mod
    ops = set(a.ops.split(",")) if a.ops != "all" else {"stream", "stream_rev", "den", "clip", "clip_rev",
                                                                  "norm", "gates", "attn"}
    B, H, S, D, Tc, Tw = a.batch, a.heads, a.tokens, a.head_dim, a.chunk_frames, a.clip_frames
    dtypes = [getattr(torch, d) for d in a.dtypes.split(",")]
    for dt in dtypes:
        dn = str(dt).replace("torch.", "")
        if "stream" in ops:
            x = gdn_inputs(a, Tc, D, dt)
            yield ("GDN stream fwd (numerator)", f"{B}x{H}x{Tc}x{S}x{D}", dn,
                   lambda x=x: gdn_recurrent(*as_f32(x)), stream and (lambda x=x: stream(*x)),
                   *gdn_cost(a, Tc, D, dt, False))
            if a.sweep and stream:
                for bv in (16, 32, 64, 128):
                    yield (f"  sweep: stream block_v={bv}", f"{B}x{H}x{Tc}x{S}x{D}", dn, None,
                           lambda x=x, bv=bv: stream(*x, block_v=bv), *gdn_cost(a, Tc, D, dt, False))
                yield ("  sweep: clip kernel on the chunk", f"{B}x{H}x{Tc}x{S}x{D}", dn, None,
                       lambda x=x: clip(*x), *gdn_cost(a, Tc, D, dt, True))
                xd = gdn_inputs(a, Tc, 1, dt)
                for bv in (16, 32):
                    yield (f"  sweep: den stream block_v={bv} Dv=1", f"{B}x{H}x{Tc}x{S}x{D}", dn, None,
                           lambda x=xd, bv=bv: stream(*x, block_v=bv), *gdn_cost(a, Tc, 1, dt, False))
        if "stream_rev" in ops:
            x = gdn_inputs(a, Tc, D, dt, reverse_restart=True)
            yield ("GDN stream rev (within chunk)", f"{B}x{H}x{Tc}x{S}x{D}", dn,
                   lambda x=x: gdn_recurrent(*as_f32(x), reverse=True),
                   stream and (lambda x=x: stream(*x, reverse=True)),
                   *gdn_cost(a, Tc, D, dt, False))
        if "den" in ops:
            x = gdn_inputs(a, Tc, 1, dt)
            yield ("GDN stream fwd (denominator, Dv=1)", f"{B}x{H}x{Tc}x{S}x{D}", dn,
                   lambda x=x: gdn_recurrent(*as_f32(x)), stream and (lambda x=x: stream(*x)),
                   *gdn_cost(a, Tc, 1, dt, False))
        if "clip" in ops:
            x = gdn_inputs(a, Tw, D, dt, reverse_restart=True)
            yield ("GDN whole clip fwd (numerator)", f"{B}x{H}x{Tw}x{S}x{D}", dn,
                   lambda x=x: gdn_recurrent(*as_f32(x)), clip and (lambda x=x: clip(*x)),
                   *gdn_cost(a, Tw, D, dt, True))
            if a.sweep and clip:
                yield ("  sweep: stream kernel on the clip", f"{B}x{H}x{Tw}x{S}x{D}", dn, None,
                       lambda x=x: stream(*x), *gdn_cost(a, Tw, D, dt, False))
                for bv in (32, 64):
                    yield (f"  sweep: clip scan block_v={bv}", f"{B}x{H}x{Tw}x{S}x{D}", dn, None,
                           lambda x=x, bv=bv: clip(*x, config={"scan": {"BV": bv}}), *gdn_cost(a, Tw, D, dt, True))
        if "clip_rev" in ops:
            x = gdn_inputs(a, Tw, 1, dt, reverse_restart=True)
            yield ("GDN whole clip rev (denominator, Dv=1)", f"{B}x{H}x{Tw}x{S}x{D}", dn,
                   lambda x=x: gdn_recurrent(*as_f32(x), reverse=True),
                   clip and (lambda x=x: clip(*x, reverse=True)), *gdn_cost(a, Tw, 1, dt, True))
        C = H * D
        es = torch.tensor([], dtype=dt).element_size()
        if "norm" in ops:
            xs = torch.randn(B, Tc * S, C).to(dt).to(a.device)
            w = torch.ones(C, device=a.device)
            n = xs.numel()
            yield ("q/k RMSNorm+ReLU+scale -> f32", f"{B}x{Tc * S}x{C}", dn,
                   lambda xs=xs, w=w: qk_norm_relu_ref(xs, w, 1e-6, 0.1, out_dtype=torch.float32),
                   prep and (lambda xs=xs, w=w: prep.qk_norm_relu(xs, w, 1e-6, 0.1, out_dtype=torch.float32)),
                   5 * n, n * (es + 4) + C * 4)
        if "gates" in ops:
            xs = torch.randn(B, Tc, S, C).to(dt).to(a.device)
            p = [torch.randn(H, C).to(dt), torch.randn(H), torch.randn(H, C).to(dt), torch.randn(H), torch.zeros(H),
                 torch.full((H,), -5.0)]
            p = [t.to(a.device) for t in p]
            yield ("gates beta + decay", f"{B}x{Tc}x{S}x{C}", dn, lambda xs=xs, p=p: gdn_gates_ref(xs, *p),
                   prep and (lambda xs=xs, p=p: prep.gdn_gates(xs, *p)),
                   4 * B * Tc * S * C * H, xs.numel() * es + B * H * Tc * S * 4 + 2 * H * C * es)
    if "attn" in ops:
        from worldwalk.kernels import sink_window_attention

        adt = torch.bfloat16 if a.device.startswith("cuda") else torch.float32
        Nq, Nc = Tc * S, (a.sink_frames + a.window_chunks * Tc) * S
        r = lambda n: torch.randn(B, H, n, D, dtype=adt, device=a.device)  # noqa: E731
        q, kn, vn, kc, vc = r(Nq), r(Nq), r(Nq), r(Nc), r(Nc)
        sc = 128**-0.5

        def math_ref(q=q, kn=kn, vn=vn, kc=kc, vc=vc):
            k, v = torch.cat([kc, kn], 2), torch.cat([vc, vn], 2)
            return ((q @ k.transpose(-1, -2)).float() * sc).softmax(-1).to(q.dtype) @ v

        Nk = Nq + Nc
        es = torch.tensor([], dtype=adt).element_size()
        yield ("softmax vs sink+window cache (SDPA)", f"{B}x{H}x{Nq}q x {Nk}k x {D}", str(adt).replace("torch.", ""),
               math_ref, lambda: sink_window_attention(q, kc, vc, kn, vn, scale=sc),
               4 * B * H * Nq * Nk * D, B * H * (2 * Nq + 2 * Nk) * D * es)


def main():
    keep_freed_memory()  # as the app does (worldwalk/app/runtime.py)
    a = parse()
    if a.threads:
        torch.set_num_threads(a.threads)
    on_gpu = a.device.startswith("cuda")
    if a.interpret and not on_gpu:
        os.environ["TRITON_INTERPRET"] = "1"  # before any Triton kernel module is imported
    from worldwalk.kernels import triton_available

    have_triton = triton_available() and (on_gpu or a.interpret)
    name, bw, tf, src = device_peaks(a)
    cmd = "python " + " ".join(shlex.quote(x) for x in sys.argv)
    import importlib.metadata as md

    try:
        tv = md.version("triton")
    except md.PackageNotFoundError:
        tv = "absent"
    print(f"Command: `{cmd}`  ")
    print(f"Device: {name}; torch {torch.__version__}, triton {tv}"
          f"{' (interpreter)' if have_triton and not on_gpu else ''}. Date: {datetime.date.today().isoformat()}.  ")
    peaks = ", ".join(f"{k} {v:.3g}" for k, v in tf.items())
    print(f"Floor peaks: {bw:.0f} GB/s; matmul TFLOP/s {peaks} ({src}). Sizes: {a.sizes} "
          f"(B={a.batch}, H={a.heads}, D={a.head_dim}, S={a.tokens}, chunk {a.chunk_frames} frames, clip "
          f"{a.clip_frames} frames, cache {a.sink_frames} sink + {a.window_chunks}x{a.chunk_frames} window frames).")
    print()
    print("| op | shape | dtype | reference ms | kernel ms | speed-up | GFLOP | MB | floor ms | kernel / floor "
          "| rel. RMS err |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for op, shape, dn, ref, fast, flops, nbytes in rows_for(a, have_triton):
        # float32 inputs run tf32x3 dots, bf16 inputs tf32 dots on the float32 state (bf16 for SDPA)
        kind = "tf32x3" if dn == "float32" else ("bf16" if op.startswith("softmax") else "tf32")
        floor = max(nbytes / (bw * 1e9), flops / (tf[kind] * 1e12)) * 1e3
        t_ref = bench(ref, a.device, a.repeat) if ref is not None else None
        t_fast = bench(fast, a.device, a.repeat) if fast is not None else None
        err = "—"
        if ref is not None and fast is not None:
            o_ref, o_fast = ref(), fast()
            o_ref = o_ref[0] if isinstance(o_ref, tuple) else o_ref
            o_fast = o_fast[0] if isinstance(o_fast, tuple) else o_fast
            err = f"{rel_rms(o_fast, o_ref):.1e}"
        f = lambda t: "—" if t is None else f"{t:.3f}"  # noqa: E731
        speed = f"{t_ref / t_fast:.1f}x" if t_ref and t_fast else "—"
        ratio = f"{t_fast / floor:.1f}x" if t_fast else "—"
        print(f"| {op} | {shape} | {dn} | {f(t_ref)} | {f(t_fast)} | {speed} | {flops / 1e9:.3f} | "
              f"{nbytes / 1e6:.1f} | {floor:.4f} | {ratio} | {err} |")
    if not have_triton:
        print("\nkernel ms: Triton columns need CUDA (or --interpret on a CPU); the SDPA row runs everywhere.")


if __name__ == "__main__":
    main()
