"""A world bundle: the model and its VAE in one safetensors file, both configs inside (the embedded default's format).

    save_bundle(model, vae, "assets/default_world.safetensors", dtype=torch.bfloat16)
    model, vae, extra = load_bundle("assets/default_world.safetensors")
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from worldwalk import assets_dir
from worldwalk.world.checkpoint import CheckpointError, load_state_dict_strict, read_checkpoint
from worldwalk.world.depth import DepthConfig, DepthNet
from worldwalk.world.ground_shape import GroundShape, GroundShapeConfig
from worldwalk.world.model import WorldModel
from worldwalk.world.object_mask import ObjectMask, ObjectMaskConfig
from worldwalk.world.presets import ModelConfig, get_preset
from worldwalk.world.vae import CausalVAE, VAEConfig

ASSETS = assets_dir()
DEFAULT_BUNDLE = ASSETS / "default_world.safetensors"
# the VAE each of our presets is paired with
PRESET_VAE = {"tiny": "tiny-vae", "test": "test-vae"}


def save_bundle(model: WorldModel, vae: CausalVAE, path: str | Path, extra: dict | None = None,
                dtype: torch.dtype | None = torch.bfloat16, depth: DepthNet | None = None) -> Path:
    """depth: the world memory's depth network, stored under depth.* (float32: it is small) with its config, and
    its start picture's networks (depth.start, depth.ground_shape, depth.object_mask, where set) under depth.start.*,
    depth.ground_shape.* and depth.object_mask.* with their own."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cast = lambda v: v.to(dtype) if dtype is not None and v.is_floating_point() else v  # noqa: E731
    t = {f"model.{k}": cast(v).contiguous() for k, v in model.state_dict().items()}
    t.update({f"vae.{k}": cast(v).contiguous() for k, v in vae.state_dict().items()})
    meta = {"worldwalk_config": json.dumps(model.cfg.to_dict()), "worldwalk_vae": json.dumps(vae.cfg.to_dict()),
            "worldwalk_extra": json.dumps(extra or {})}
    if depth is not None:
        t.update({f"depth.{k}": v.float().contiguous() for k, v in depth.state_dict().items()})
        meta["worldwalk_depth"] = json.dumps(depth.cfg.to_dict())
        if depth.start is not None:
            meta["worldwalk_start_depth"] = json.dumps(depth.start.cfg.to_dict())
        if depth.ground_shape is not None:
            meta["worldwalk_ground_shape"] = json.dumps(depth.ground_shape.cfg.to_dict())
        if depth.object_mask is not None:
            meta["worldwalk_object_mask"] = json.dumps(depth.object_mask.cfg.to_dict())
    tmp = path.with_name(path.name + ".tmp")
    save_file(t, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def load_bundle(path: str | Path, device="cpu", dtype: torch.dtype = torch.float32):
    """-> (WorldModel, CausalVAE, extra). Raises CheckpointError naming the file and the problem."""
    meta: dict = {}
    tensors, cfg, extra = read_checkpoint(path, meta)
    vmeta = meta.get("worldwalk_vae")
    if cfg is None or vmeta is None:
        raise CheckpointError(f"{path}: not a world bundle (no model or VAE config in its metadata); expected a file "
                              "written by world.bundle.save_bundle")
    try:
        vcfg = VAEConfig.from_dict(json.loads(vmeta))
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{path}: bad VAE config in metadata: {e}") from None
    model, vae = WorldModel(cfg), CausalVAE(vcfg)
    load_state_dict_strict(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, f"{path} (model)")
    load_state_dict_strict(vae, {k[4:]: v for k, v in tensors.items() if k.startswith("vae.")}, f"{path} (vae)")
    return model.to(device, dtype).eval(), vae.to(device).float().eval(), extra


def load_depth(path: str | Path, device="cpu") -> DepthNet | None:
    """The world memory's depth network of a bundle (with its start picture's networks as .start, .ground_shape and
    .object_mask where the bundle has them), or None when the bundle has none. Raises CheckpointError."""
    meta: dict = {}
    tensors, _, _ = read_checkpoint(path, meta)
    dmeta = meta.get("worldwalk_depth")
    if dmeta is None:
        return None
    try:
        net = DepthNet(DepthConfig.from_dict(json.loads(dmeta)))
        smeta = meta.get("worldwalk_start_depth")
        if smeta is not None:
            net.start = DepthNet(DepthConfig.from_dict(json.loads(smeta)))
        gmeta = meta.get("worldwalk_ground_shape")
        if gmeta is not None:
            net.ground_shape = GroundShape(GroundShapeConfig.from_dict(json.loads(gmeta)))
        ometa = meta.get("worldwalk_object_mask")
        if ometa is not None:
            net.object_mask = ObjectMask(ObjectMaskConfig.from_dict(json.loads(ometa)))
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{path}: bad depth config in metadata: {e}") from None
    load_state_dict_strict(net, {k[6:]: v for k, v in tensors.items() if k.startswith("depth.")}, f"{path} (depth)")
    return net.to(device).float().eval()


def random_world(preset: str | ModelConfig, seed: int = 0):
    """Untrained weights (for tests and speed measurements): the preset's model with its training init, its VAE."""
    cfg = get_preset(preset) if isinstance(preset, str) else preset
    if cfg.name not in PRESET_VAE:
        raise ValueError(f"preset {cfg.name!r} has no small VAE of ours; expected one of {sorted(PRESET_VAE)}")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    return WorldModel(cfg).init_weights(g).eval(), CausalVAE(PRESET_VAE[cfg.name]).eval()
