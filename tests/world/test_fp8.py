"""world.fp8: matmul weights stored as float8_e4m3fn with per-output-channel scales, dequantized where they are read.
(The small synthetic release in fp8, end to end, is in test_official.py.)"""
import pytest
import torch
from torch import nn

from worldwalk.world.fp8 import DIT_KEEP, is_quantized, quantize_fp8, quantize_weight, require_fp8, weight_bytes
from worldwalk.world.model import WorldModel
from worldwalk.world.presets import get_preset

MATMULS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def test_quantize_weight_per_channel(rms):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 40, generator=g) * torch.tensor([1e-4, 1e-2, 1.0, 30.0, 1e3, 0.0])[:, None]
    stored, scale = quantize_weight(w)
    assert stored.dtype == torch.float8_e4m3fn and stored.shape == w.shape
    assert scale.shape == (6, 1) and scale.dtype == torch.float32
    back = stored.float() * scale
    assert back[5].abs().max() == 0  # an all-zero channel stays zero
    for o in range(5):  # every channel keeps its own precision, whatever its magnitude
        assert rms(back[o], w[o]) < 0.04
    assert stored.float().abs().amax(1)[:5].eq(448).all()  # each channel uses the whole e4m3 range


def test_readers_of_weight_see_the_dequantized_tensor(rms):
    torch.manual_seed(0)
    net = nn.ModuleDict({"lin": nn.Linear(16, 24), "conv": nn.Conv2d(16, 8, 1),
                         "depthwise": nn.Conv2d(16, 16, 3, padding=1, groups=16)})
    ref = {k: m.weight.detach().clone() for k, m in net.items()}
    quantize_fp8(net)
    assert is_quantized(net["lin"]) and is_quantized(net["conv"]) and not is_quantized(net["depthwise"])
    assert net["lin"].parametrizations.weight.original.dtype == torch.float8_e4m3fn
    assert net["lin"].weight.dtype == torch.float32 and net["lin"].bias.dtype == torch.float32
    assert torch.equal(net["depthwise"].weight, ref["depthwise"])
    x = torch.randn(3, 16)
    with torch.no_grad():
        assert rms(net["lin"](x), x @ ref["lin"].T + net["lin"].bias) < 0.04
        # the FFN reads a 1x1 conv's weight as a matrix: that works on the dequantized view too
        assert rms(net["conv"].weight.flatten(1), ref["conv"].flatten(1)) < 0.04
    quantize_fp8(net)  # a second call leaves quantized modules alone
    assert net["lin"].parametrizations.weight.original.dtype == torch.float8_e4m3fn


def test_bf16_compute_dtype_is_kept():
    lin = nn.Linear(32, 32).to(torch.bfloat16)
    quantize_fp8(lin)
    assert lin.weight.dtype == torch.bfloat16
    assert lin(torch.randn(2, 32, dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_full_size_model_halves_its_bytes():
    """sana-wm-1600m on the meta device (no memory): the bytes fp8 saves against bf16, embedders and final layer kept."""
    with torch.device("meta"):
        model = WorldModel(get_preset("sana-wm-1600m")).to(torch.bfloat16)

    def total(m):
        return sum(t.numel() * t.element_size() for t in [*m.parameters(), *m.buffers()])

    blocks_bf16, linear_bf16, all_bf16 = weight_bytes(model.blocks, MATMULS), weight_bytes(model), total(model)
    quantize_fp8(model, keep=DIT_KEEP)
    assert not is_quantized(model.final_layer.linear) and not is_quantized(model.y_embedder.y_proj.fc1)
    assert blocks_bf16 / weight_bytes(model.blocks, MATMULS) > 1.99  # 5.23 GB -> 2.62 GB
    assert linear_bf16 / weight_bytes(model) > 1.97  # every nn.Linear: 2.91 GB -> 1.47 GB
    assert total(model) < 0.505 * all_bf16  # the whole DiT: 5.32 GB -> 2.69 GB


def test_torch_without_float8_is_one_line(monkeypatch):
    monkeypatch.delattr(torch, "float8_e4m3fn")
    with pytest.raises(ValueError, match=r"--fp8: this torch build .* has no torch.float8_e4m3fn") as e:
        require_fp8()
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="--fp8"):
        quantize_fp8(nn.Linear(4, 4))
