"""Our checkpoint files: one safetensors file whose metadata carries the model config (and any extra JSON).

Loading is strict: missing, unexpected and mis-shaped tensors are all listed in one CheckpointError.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from worldwalk.world.presets import ModelConfig

CONFIG_KEY = "worldwalk_config"
EXTRA_KEY = "worldwalk_extra"
# tensors of the official release that carry nothing the forward reads and have no place in our modules
IGNORED_KEYS = ("pos_embed",)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and what is wrong."""


def save_checkpoint(model: torch.nn.Module, path: str | Path, extra: dict | None = None,
                    dtype: torch.dtype | None = None) -> Path:
    """Write model weights (optionally cast, e.g. to bfloat16 to ship small) with the config inside the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous()
          for k, v in model.state_dict().items()}
    meta = {CONFIG_KEY: json.dumps(model.cfg.to_dict())}
    if extra:
        meta[EXTRA_KEY] = json.dumps(extra)
    tmp = path.with_name(path.name + ".tmp")
    save_file(sd, str(tmp), metadata=meta)
    tmp.replace(path)  # never leave a half-written checkpoint under the real name
    return path


class UnreadableFile(ValueError):
    """A file safetensors cannot read; str() is the first line of the reason."""


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """-> (tensors, string metadata) of one safetensors file. Raises UnreadableFile; callers word the message."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return load_file(str(path)), meta
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UnreadableFile(str(e).splitlines()[0] if str(e) else type(e).__name__) from None


class LazySafetensors(Mapping):
    """The tensors of one or more safetensors files, each read from disk only when asked for (`lazy[key]`), so
    loading a multi-gigabyte checkpoint into a model holds one tensor at a time, not a second copy of the model.

    `meta()` gives shape-only (meta-device) tensors for checks that read nothing. Opening checks every header and
    raises UnreadableFile (unreadable file) or KeyError (a key in two files) naming the file."""

    def __init__(self, paths):
        self._files, self._where = {}, {}
        for p in map(str, paths):
            try:
                f = safe_open(p, framework="pt")
                keys = list(f.keys())
            except (SafetensorError, OSError, ValueError, RuntimeError) as e:
                raise UnreadableFile(f"{p}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
            self._files[p] = f
            for k in keys:
                if k in self._where:
                    raise KeyError(f"{p}: repeats tensor {k!r} of {self._where[k]}")
                self._where[k] = p

    def __getitem__(self, key: str) -> torch.Tensor:
        return self._files[self._where[key]].get_tensor(key)

    def __iter__(self):
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def meta(self) -> dict[str, torch.Tensor]:
        out = {}
        for k, p in self._where.items():
            sl = self._files[p].get_slice(k)
            out[k] = torch.empty(tuple(sl.get_shape()), device="meta")
        return out


def read_checkpoint(path: str | Path, meta_out: dict | None = None
                    ) -> tuple[dict[str, torch.Tensor], ModelConfig | None, dict]:
    """-> (tensors, config or None if the file has none, extra metadata). `meta_out` receives the raw metadata."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file (expected a .safetensors checkpoint)")
    try:
        tensors, meta = read_safetensors(path)
    except UnreadableFile as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    if meta_out is not None:
        meta_out.update(meta)
    cfg = None
    if CONFIG_KEY in meta:
        try:
            cfg = ModelConfig.from_dict(json.loads(meta[CONFIG_KEY]))
        except (ValueError, TypeError) as e:
            raise CheckpointError(f"{path}: bad model config in metadata: {e}") from None
    extra = json.loads(meta[EXTRA_KEY]) if EXTRA_KEY in meta else {}
    return tensors, cfg, extra


def load_state_dict_strict(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy tensors into model; any missing / unexpected / mis-shaped tensor is listed in one CheckpointError.
    `tensors` may be a LazySafetensors: then each tensor is read, copied (and cast) into the model, and dropped."""
    own = model.state_dict()
    lazy = isinstance(tensors, LazySafetensors)
    view = tensors.meta() if lazy else tensors
    view = {k: v for k, v in view.items() if k not in IGNORED_KEYS}
    missing = sorted(set(own) - set(view))
    unexpected = sorted(set(view) - set(own))
    shapes = sorted(f"{k}: file {tuple(view[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(view) if tuple(own[k].shape) != tuple(view[k].shape))
    if missing or unexpected or shapes:
        def listing(name, items):
            if not items:
                return None
            more = f" … and {len(items) - 8} more" if len(items) > 8 else ""
            return f"{len(items)} {name} ({', '.join(items[:8])}{more})"
        parts = [p for p in (listing("missing", missing), listing("unexpected", unexpected),
                             listing("mis-shaped", shapes)) if p]
        name = getattr(getattr(model, "cfg", None), "name", type(model).__name__)
        raise CheckpointError(f"{source}: does not fit model {name!r}: " + "; ".join(parts))
    if not lazy:
        model.load_state_dict(view, strict=True)
        return
    with torch.no_grad():
        for k, dst in own.items():  # state_dict() tensors share storage with the model's parameters and buffers
            try:
                dst.copy_(tensors[k])
            except (SafetensorError, OSError, RuntimeError) as e:
                raise CheckpointError(f"{source}: tensor {k} cannot be read ({str(e).splitlines()[0]})") from None


def load_checkpoint(path: str | Path, expect: ModelConfig | str | None = None, device="cpu",
                    dtype: torch.dtype | None = None):
    """Build the model the file describes and load it. -> (WorldModel, extra metadata).

    `expect` (a config or preset name) is checked against the file's own config first, so a checkpoint of another
    preset is reported as such rather than as a wall of shape mismatches.
    """
    from worldwalk.world.model import WorldModel
    from worldwalk.world.presets import get_preset

    tensors, cfg, extra = read_checkpoint(path)
    if expect is not None:
        want = get_preset(expect) if isinstance(expect, str) else expect
        if cfg is None:
            cfg = want
        elif _arch(cfg) != _arch(want):
            diff = {k: (v, want.to_dict()[k]) for k, v in cfg.to_dict().items()
                    if k != "name" and v != want.to_dict()[k] and k in _ARCH_FIELDS}
            raise CheckpointError(f"{path}: is a checkpoint of {cfg.name!r}, expected {want.name!r} "
                                  f"(differs in {', '.join(f'{k} {a} vs {b}' for k, (a, b) in diff.items())})")
    if cfg is None:
        raise CheckpointError(f"{path}: carries no worldwalk config; name the preset it belongs to")
    with torch.device("meta"):
        model = WorldModel(cfg)
    model = model.to_empty(device=device)
    load_state_dict_strict(model, tensors, str(path))
    if dtype is not None:
        model = model.to(dtype)
    return model.eval(), extra


_ARCH_FIELDS = ("depth", "hidden", "head_dim", "latent_channels", "softmax_every", "ffn_ratio", "conv_kernel",
                "t_kernel", "caption_channels", "temporal_stride", "legacy_tensors")


def _arch(cfg: ModelConfig) -> tuple:
    d = cfg.to_dict()
    return tuple(d[k] for k in _ARCH_FIELDS)
