"""Hot ops behind one call per op on every device.

    frame_gdn_scan(q, k, v, beta, decay, state=None, reverse=False) -> (out, state)   frame-wise GDN scan
    qk_norm_relu(x, weight, eps, scale=1.0, *, relu=True, out_dtype=None) -> y          q/k RMSNorm + ReLU + key scale
    gdn_gates(x, w_beta, b_beta, w_gate, b_gate, A_log, dt_bias) -> (beta, decay)       β per token, γ per frame
    sink_window_attention(q, k_cache, v_cache, k_new, v_new, scale=None) -> out         softmax vs sink + window cache
    SinkWindowCache(window)                                                              the constant-size K/V cache
    cpu_native_bf16() -> bool                                                            bf16 native on this CPU?
    cpu_info() -> (model name, flags)                                                    from /proc/cpuinfo

Each op has a PyTorch reference (kernels/gdn/naive.py, kernels/gdn/prep_naive.py) and a Triton twin beside it
(kernels/gdn/stream.py, clip.py, prep.py); the softmax op runs through torch SDPA everywhere.

Backend choice, read at every call from the environment variable WORLDWALK_KERNELS:
    auto (default)  Triton for CUDA tensors when triton imports, the reference otherwise
                    (and wherever autograd records the op: the Triton twins have no backward)
    reference       the PyTorch reference everywhere (debugging)
    chunked         like reference, but the GDN scan uses the chunked reference form (parallel over frames)
    triton          Triton everywhere; on CPU tensors this needs TRITON_INTERPRET=1 set before the first Triton op
                    (the interpreter: slow, for tests)
WORLDWALK_GDN picks the Triton GDN kernel: auto (default: `stream` up to 8 frames, `clip` beyond), stream, clip.
WORLDWALK_KERNELS_POISON=1 makes the Triton launchers fill every buffer they allocate with NaN (tests).

Importing this package never imports triton: the Triton modules load on first use.
"""
from __future__ import annotations

import os

import torch

from worldwalk.kernels._runtime import cpu_info, cpu_native_bf16, interpreting, triton_available
from worldwalk.kernels.attention import SinkWindowCache, sink_window_attention
from worldwalk.kernels.gdn.naive import gdn_chunked, gdn_recurrent
from worldwalk.kernels.gdn.prep_naive import gdn_gates_ref, qk_norm_relu_ref

__all__ = [
    "frame_gdn_scan", "qk_norm_relu", "gdn_gates", "sink_window_attention", "SinkWindowCache",
    "gdn_recurrent", "gdn_chunked", "gdn_gates_ref", "qk_norm_relu_ref", "backend", "gdn_method", "triton_available",
    "cpu_native_bf16", "cpu_info",
]

_CHOICES = ("auto", "reference", "chunked", "triton")
_TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
STREAM_MAX_FRAMES = 8  # auto: the streaming kernel up to this many frames, the whole-clip kernel beyond


def _choice() -> str:
    choice = os.environ.get("WORLDWALK_KERNELS", "auto").lower()
    if choice not in _CHOICES:
        raise ValueError(f"WORLDWALK_KERNELS={choice!r}: expected one of {', '.join(_CHOICES)}")
    return choice


def backend(device: torch.device | str | None = None) -> str:
    """The backend an op on `device` runs: "triton", "reference" or "chunked" (the latter two are both PyTorch).

    With no device, answers for CUDA when a GPU is present, else for the CPU.
    """
    choice = _choice()
    if choice in ("reference", "chunked"):
        return choice
    if choice == "triton":
        if not triton_available():
            raise RuntimeError("WORLDWALK_KERNELS=triton but triton does not import")
        return "triton"
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return "triton" if torch.device(device).type == "cuda" and triton_available() else "reference"


def gdn_method(T: int) -> str:
    """Which Triton GDN kernel a scan of T frames uses: "stream" or "clip" (env WORLDWALK_GDN overrides)."""
    m = os.environ.get("WORLDWALK_GDN", "auto").lower()
    if m not in ("auto", "stream", "clip"):
        raise ValueError(f"WORLDWALK_GDN={m!r}: expected one of auto, stream, clip")
    if m != "auto":
        return m
    return "stream" if T <= STREAM_MAX_FRAMES else "clip"


def _use_triton(*tensors: torch.Tensor) -> bool:
    t0 = tensors[0]
    if backend(t0.device) != "triton":
        return False
    if any(t.dtype not in _TRITON_DTYPES for t in tensors) or any(t.numel() == 0 for t in tensors):
        return False  # float64 and empty inputs: the reference
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return False  # training: the Triton twins have no backward; the reference is differentiable
    if t0.device.type != "cuda" and not interpreting():
        raise RuntimeError("WORLDWALK_KERNELS=triton on CPU tensors needs TRITON_INTERPRET=1 in the environment "
                           "before the first Triton op (Triton's interpreter)")
    return True


def _check_interpreted(kernel, device: torch.device) -> None:
    """On CPU the kernels must have been decorated under TRITON_INTERPRET=1 (it is read when the module loads)."""
    if device.type == "cuda":
        return
    from triton.runtime.interpreter import InterpretedFunction

    if not isinstance(kernel, InterpretedFunction):
        raise RuntimeError("Triton kernels were loaded without TRITON_INTERPRET=1 and cannot run on CPU tensors; "
                           "set it before the first Triton op")


def _check(q, k, v, beta, decay, state):
    if q.ndim != 5 or k.shape != q.shape:
        raise ValueError(f"frame_gdn_scan: q and k must both be (B, H, T, S, Dk); "
                         f"got {tuple(q.shape)}, {tuple(k.shape)}")
    B, H, T, S, _ = q.shape
    if v.ndim != 5 or v.shape[:4] != (B, H, T, S):
        raise ValueError(f"frame_gdn_scan: v must be (B={B}, H={H}, T={T}, S={S}, Dv); got {tuple(v.shape)}")
    if beta.shape != (B, H, T, S):
        raise ValueError(f"frame_gdn_scan: beta must be {(B, H, T, S)}; got {tuple(beta.shape)}")
    if decay.shape != (B, H, T):
        raise ValueError(f"frame_gdn_scan: decay must be {(B, H, T)}; got {tuple(decay.shape)}")
    if state is not None and state.shape != (B, H, q.shape[-1], v.shape[-1]):
        raise ValueError(f"frame_gdn_scan: state must be {(B, H, q.shape[-1], v.shape[-1])}; got {tuple(state.shape)}")


def frame_gdn_scan(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, decay: torch.Tensor,
                   state: torch.Tensor | None = None, reverse: bool = False):
    """Forward (inclusive) or reverse (exclusive) frame-wise GDN scan -> (out (B,H,T,S,Dv), state (B,H,Dk,Dv)).

    Maths and shapes: kernels/gdn/naive.py. The Triton path keeps the state in float32 (returned float32) and writes
    `out` in v.dtype; q, k, v may be float32, bf16 or fp16 and any strides with a contiguous last axis.
    """
    _check(q, k, v, beta, decay, state)
    if _use_triton(q, k, v, beta, decay):
        if gdn_method(q.shape[2]) == "stream":
            from worldwalk.kernels.gdn import stream as mod
            kernel, fn = mod._gdn_stream_kernel, mod.gdn_stream
        else:
            from worldwalk.kernels.gdn import clip as mod
            kernel, fn = mod._gdn_clip_scan_kernel, mod.gdn_clip
        _check_interpreted(kernel, q.device)
        return fn(q, k, v, beta, decay, state, reverse)
    if backend(q.device) == "chunked":
        return gdn_chunked(q, k, v, beta, decay, state, reverse)
    return gdn_recurrent(q, k, v, beta, decay, state, reverse)


def qk_norm_relu(x: torch.Tensor, weight: torch.Tensor, eps: float, scale: float = 1.0, *, relu: bool = True,
                 out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """relu(x · rsqrt(mean(x²) + eps) · weight) · scale over the last axis (all C = heads·D channels of a token).

    x (..., C), weight (C,) -> (..., C) in out_dtype (default x.dtype); statistics in float32. One pass on Triton.
    """
    if x.shape[-1] != weight.shape[0]:
        raise ValueError(f"qk_norm_relu: weight must be ({x.shape[-1]},); got {tuple(weight.shape)}")
    if _use_triton(x, weight):
        from worldwalk.kernels.gdn import prep

        _check_interpreted(prep._qk_norm_relu_kernel, x.device)
        return prep.qk_norm_relu(x, weight, eps, scale, relu=relu, out_dtype=out_dtype)
    return qk_norm_relu_ref(x, weight, eps, scale, relu=relu, out_dtype=out_dtype)


def gdn_gates(x: torch.Tensor, w_beta: torch.Tensor, b_beta: torch.Tensor | None, w_gate: torch.Tensor,
              b_gate: torch.Tensor | None, A_log: torch.Tensor, dt_bias: torch.Tensor):
    """The GDN gates from the modulated input x (B, T, S, C) -> beta (B, H, T, S), decay (B, H, T), float32.

    beta = sigmoid(x W_betaᵀ + b_beta) per token; decay = exp(−exp(A_log) · softplus(mean_S(x) W_gateᵀ + b_gate +
    dt_bias)) per frame. W (H, C), b (H,) or None, A_log and dt_bias (H,): the official beta_proj / gate_proj params.
    """
    if x.ndim != 4:
        raise ValueError(f"gdn_gates: x must be (B, T, S, C); got {tuple(x.shape)}")
    H, C = w_beta.shape
    if x.shape[-1] != C or w_gate.shape != (H, C) or A_log.shape != (H,) or dt_bias.shape != (H,):
        raise ValueError("gdn_gates: expected w_beta, w_gate (H, C) and A_log, dt_bias (H,) matching x's C")
    if _use_triton(x, w_beta, w_gate):
        from worldwalk.kernels.gdn import prep

        _check_interpreted(prep._gates_token_kernel, x.device)
        return prep.gdn_gates(x, w_beta, b_beta, w_gate, b_gate, A_log, dt_bias)
    return gdn_gates_ref(x, w_beta, b_beta, w_gate, b_gate, A_log, dt_bias)
