"""Our safetensors checkpoints: config inside, strict loading with one clear error."""
import pytest
import torch
from safetensors.torch import load_file, save_file

from worldwalk.world.checkpoint import CheckpointError, load_checkpoint, load_state_dict_strict, save_checkpoint
from worldwalk.world.model import WorldModel


def test_round_trip_keeps_config_and_outputs(tmp_path):
    torch.manual_seed(0)
    m = WorldModel("test").eval()
    path = save_checkpoint(m, tmp_path / "m.safetensors", extra={"note": "hello"})
    m2, extra = load_checkpoint(path)
    assert m2.cfg == m.cfg and extra == {"note": "hello"}
    x = torch.randn(1, 4, 3, 2, 3)
    with torch.no_grad():
        assert torch.equal(m(x, torch.full((1, 3), 500.0)), m2(x, torch.full((1, 3), 500.0)))


def test_half_precision_save_is_small(tmp_path):
    m = WorldModel("test")
    full = save_checkpoint(m, tmp_path / "f.safetensors")
    half = save_checkpoint(m, tmp_path / "h.safetensors", dtype=torch.bfloat16)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    m2, _ = load_checkpoint(half, dtype=torch.float32)
    assert next(m2.parameters()).dtype == torch.float32


def test_strict_errors_list_everything(tmp_path):
    m = WorldModel("test")
    path = save_checkpoint(m, tmp_path / "m.safetensors")
    sd = load_file(str(path))
    del sd["blocks.0.attn.qkv.weight"]
    sd["blocks.0.attn.extra.weight"] = torch.zeros(2)
    sd["final_layer.linear.weight"] = torch.zeros(3, 3)
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    bad = tmp_path / "bad.safetensors"
    save_file(sd, str(bad), metadata=meta)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(bad)
    msg = str(e.value)
    assert str(bad) in msg and "\n" not in msg
    assert "1 missing (blocks.0.attn.qkv.weight)" in msg
    assert "1 unexpected (blocks.0.attn.extra.weight)" in msg
    assert "1 mis-shaped (final_layer.linear.weight: file (3, 3) vs model (4, 64))" in msg


def test_checkpoint_of_another_preset(tmp_path):
    path = save_checkpoint(WorldModel("test"), tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match="is a checkpoint of 'test', expected 'tiny'"):
        load_checkpoint(path, expect="tiny")


@pytest.mark.parametrize("content", [b"", b"not a safetensors file at all", b"\x08\x00\x00\x00\x00\x00\x00\x00{}"])
def test_corrupt_or_missing_files(tmp_path, content):
    p = tmp_path / "c.safetensors"
    p.write_bytes(content)
    with pytest.raises(CheckpointError, match="c.safetensors"):
        load_checkpoint(p, expect="test")
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_world_bundle_round_trip(tmp_path):
    from worldwalk.world.bundle import load_bundle, random_world, save_bundle

    model, vae = random_world("test", seed=1)
    p = save_bundle(model, vae, tmp_path / "w.safetensors", extra={"trained": False}, dtype=None)
    m2, v2, extra = load_bundle(p)
    assert extra == {"trained": False} and m2.cfg == model.cfg and v2.cfg == vae.cfg
    for a, b in zip(list(model.state_dict().values()) + list(vae.state_dict().values()),
                    list(m2.state_dict().values()) + list(v2.state_dict().values())):
        assert torch.equal(a, b)
    plain = save_checkpoint(model, tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match="not a world bundle"):
        load_bundle(plain)


def test_lazy_safetensors_reads_one_tensor_at_a_time(tmp_path):
    from safetensors.torch import save_file

    from worldwalk.world.checkpoint import LazySafetensors, UnreadableFile

    model = WorldModel("test").init_weights(torch.Generator().manual_seed(3))
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    keys = sorted(sd)
    half = len(keys) // 2
    save_file({k: sd[k] for k in keys[:half]}, str(tmp_path / "a.safetensors"))
    save_file({k: sd[k] for k in keys[half:]} | {"pos_embed": torch.zeros(1, 2)}, str(tmp_path / "b.safetensors"))
    lazy = LazySafetensors([tmp_path / "a.safetensors", tmp_path / "b.safetensors"])
    assert len(lazy) == len(keys) + 1 and {k: tuple(v.shape) for k, v in lazy.meta().items() if k in sd} == \
        {k: tuple(v.shape) for k, v in sd.items()}
    assert all(v.device.type == "meta" for v in lazy.meta().values())
    twin = WorldModel("test")
    load_state_dict_strict(twin, lazy, "two shards")  # pos_embed is ignored, as for the release
    assert all(torch.equal(a, b) for a, b in zip(twin.state_dict().values(), model.state_dict().values()))
    # a mis-shaped tensor is listed before anything is read
    save_file({keys[0]: torch.zeros(3, 3)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(CheckpointError, match="mis-shaped"):
        load_state_dict_strict(WorldModel("test"), LazySafetensors([tmp_path / "bad.safetensors"]), "bad")
    with pytest.raises(KeyError, match="repeats tensor"):
        LazySafetensors([tmp_path / "a.safetensors", tmp_path / "a.safetensors"])
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    with pytest.raises(UnreadableFile, match="junk.safetensors"):
        LazySafetensors([tmp_path / "junk.safetensors"])
