"""fp8 weights: the DiT's matmul weights kept in 8 bits and dequantized to the compute dtype where they are used.

A memory plan for GPUs smaller than the bf16 model needs (sana-wm-1600m: 2.66e9 parameters, 5.3 GB in bf16).
`quantize_fp8(model, keep=DIT_KEEP)` replaces the weight of every nn.Linear and every dense (groups == 1) convolution
of the DiT's blocks (and its shared adaLN `t_block`) by

    stored (out, in, ...)  float8_e4m3fn  = round(weight / scale)
    scale  (out, 1, ...)   float32        = max |weight[o, ...]| / 448     one per output channel (448: e4m3's largest)

and makes `module.weight` (through torch.nn.utils.parametrize) return `stored.to(dtype) * scale` in the dtype the
model had (bf16 on CUDA, float32 on CPU). The product is made on every access, so only one layer's dequantized weight
exists at a time, and every reader of `.weight` works unchanged: nn.Linear's forward, and our FFN, which reads its
1x1 convolutions' weights as matmuls. Biases, norms, depthwise convolutions, tables, and the embedders and final layer
(DIT_KEEP) stay in the compute dtype.

Bytes: 1 per weight instead of 2 (bf16) or 4 (float32), plus 4 per output channel for its scale; sana-wm-1600m's DiT
goes from 5.32 GB (bf16) to 2.69 GB (tests/world/test_fp8.py counts it on the meta device).
Precision: e4m3 keeps 3 mantissa bits, a relative rounding error of at most 2^-4 per weight (about 2.4 % RMS). On the
small random release of the tests a whole forward moves by 3.7 % relative RMS (bf16 storage and compute: 1.3 %);
see tests/world/test_official.py.
Speed: no fp8 matmul is used (that needs scaled-mm kernels and an Ada/Hopper GPU); dequantizing costs one pass over
each weight per use, small next to the matmul on a GPU and slow on a CPU (which still works, for tests).

Move a quantized model with `model.to(device)` only: `model.to(dtype)` would cast the stored fp8 tensors as well.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

FP8 = "float8_e4m3fn"
# The DiT's input embedders and final projection stay in the compute dtype, as is usual for low-bit weights: they are
# where an error reaches every token unmixed (the final layer's straight into the velocity), and they hold 0.6 % of
# sana-wm-1600m's weights. Everything quantized lives in `blocks.` and `t_block.`.
DIT_KEEP = ("x_embedder.", "t_embedder.", "y_embedder.", "plucker_embedder.", "final_layer.")


def require_fp8() -> torch.dtype:
    """torch.float8_e4m3fn, or a one-line ValueError where this torch build has no float8 types."""
    dtype = getattr(torch, FP8, None)
    if dtype is None:
        raise ValueError(f"--fp8: this torch build ({torch.__version__}) has no torch.{FP8}; fp8 weights need "
                         "torch >= 2.1; leave --fp8 out to run in bf16")
    return dtype


class Dequantize(nn.Module):
    """The parametrization of one weight: stored fp8 (out, ...) -> stored · scale (out, 1, ...) in `dtype`."""

    def __init__(self, scale: torch.Tensor, dtype: torch.dtype):
        super().__init__()
        self.register_buffer("scale", scale)
        self.dtype = dtype

    def forward(self, stored: torch.Tensor) -> torch.Tensor:
        return stored.to(self.dtype) * self.scale.to(self.dtype)


def quantize_weight(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w (out, ...) -> (stored (out, ...) float8_e4m3fn, scale (out, 1, ...) float32), w ≈ stored · scale."""
    fp8 = require_fp8()
    top = torch.finfo(fp8).max
    w = w.detach().float()
    amax = w.abs().amax(dim=tuple(range(1, w.ndim)), keepdim=True)  # (out, 1, ...)
    scale = torch.where(amax > 0, amax / top, torch.ones_like(amax))  # an all-zero channel stays zero
    return (w / scale).clamp(-top, top).to(fp8), scale


def is_matmul_weight(m: nn.Module) -> bool:
    """The modules quantize_fp8 touches: nn.Linear and dense convolutions (their weights are matmuls)."""
    if isinstance(m, nn.Linear):
        return True
    return isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and m.groups == 1


def quantize_fp8(model: nn.Module, keep: tuple[str, ...] = ()) -> nn.Module:
    """In place: every matmul weight of `model` stored as fp8 with per-output-channel scales (see module doc), but
    those of modules whose names start with one of `keep` (e.g. DIT_KEEP)."""
    for name, m in list(model.named_modules()):
        if not is_matmul_weight(m) or parametrize.is_parametrized(m, "weight") or name.startswith(keep):
            continue
        w = m.weight
        stored, scale = quantize_weight(w)
        del m.weight
        m.weight = nn.Parameter(stored, requires_grad=False)
        # unsafe: the parametrization changes the dtype (fp8 stored -> compute dtype), on purpose
        parametrize.register_parametrization(m, "weight", Dequantize(scale, w.dtype), unsafe=True)
    return model


def is_quantized(m: nn.Module) -> bool:
    return parametrize.is_parametrized(m, "weight") and isinstance(m.parametrizations.weight[0], Dequantize)


def weight_bytes(model: nn.Module, kinds: tuple[type, ...] = (nn.Linear,)) -> int:
    """Bytes the weights of `model`'s modules of `kinds` occupy as stored (fp8 weights with their scales)."""
    total = 0
    for m in model.modules():
        if not isinstance(m, kinds):
            continue
        if is_quantized(m):
            p = m.parametrizations.weight
            tensors = (p.original, p[0].scale)
        else:
            tensors = (m.weight,)
        total += sum(t.numel() * t.element_size() for t in tensors)
    return total
