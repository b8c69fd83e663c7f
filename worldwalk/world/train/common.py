"""What the stages share: the clip shards in memory, resumable checkpoints, the log, the learning-rate schedule,
the clips' latents and camera tensors, the chunk and frame bookkeeping, loading trained runs, and the engine's own
one-step generation.

Every stage resumes from its last checkpoint in --out (<out>/state.pt: weights, optimiser, step, RNG) and appends
its losses to <out>/log.jsonl.
"""
from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from worldwalk.controls import rays
from worldwalk.controls.intrinsics import to_latent_grid
from worldwalk.world.model import WorldModel
from worldwalk.world.vae import CausalVAE


class ClipData:
    """All shards in memory (uint8); random clips and windows. part = (rank, world): only shards rank, rank + world,
    ... (their indices in self.shards; possibly none)."""

    def __init__(self, d: str | Path, limit: int | None = None, part: tuple[int, int] | None = None):
        shards = sorted(Path(d).glob("shard_*.npz"))
        if not shards:
            raise ValueError(f"--dir {d}: no shard_*.npz files; run `launch.py train data --dir {d}` first")
        self.shards = list(range(len(shards[:limit])))
        if part is not None:
            self.shards = self.shards[part[0]::part[1]]
        parts = [np.load(shards[i]) for i in self.shards]
        self.sizes = [len(p["c2w"]) for p in parts]  # clips per shard read
        if not parts:  # a rank with no shard of its own
            self.frames, self.c2w, self.intr = np.zeros((0, 1, 1, 1, 3), np.uint8), np.zeros((0, 1, 4, 4)), \
                np.zeros((0, 4))
            return
        self.frames = np.concatenate([p["frames"] for p in parts])  # (n, F, H, W, 3)
        self.c2w = np.concatenate([p["c2w"] for p in parts])
        self.intr = np.concatenate([p["intrinsics"] for p in parts])

    def __len__(self):
        return len(self.frames)


def to_unit(frames_u8: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(B, F, H, W, 3) uint8 (an array, or a tensor on any device) -> (B, 3, F, H, W) in [-1, 1], on its device."""
    return torch.as_tensor(frames_u8).permute(0, 4, 1, 2, 3).float() / 127.5 - 1


# ====================================================================== checkpoints
def _save_state(out: Path, step: int, modules: dict, opt, extra: dict | None = None):
    out.mkdir(parents=True, exist_ok=True)
    state = {"step": step, "opt": opt.state_dict(), "rng": torch.get_rng_state(), **(extra or {})}
    state.update({k: m.state_dict() for k, m in modules.items()})
    tmp = out / "state.pt.tmp"
    torch.save(state, tmp)
    tmp.replace(out / "state.pt")


def _load_state(out: Path, modules: dict, opt) -> int:
    p = out / "state.pt"
    if not p.exists():
        return 0
    state = torch.load(p, weights_only=False, map_location="cpu")  # a run may resume on another device
    for k, m in modules.items():
        try:
            m.load_state_dict(state[k])
        except (KeyError, RuntimeError) as e:  # another run's checkpoint (other sizes or stage) in this folder
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()] or [type(e).__name__]
            why = lines[1] if len(lines) > 1 and lines[0].endswith(":") else lines[0]  # past torch's header line
            raise ValueError(f"{p}: its {k} does not fit this run's ({why}); resume with the settings it was made "
                             f"with, or give another --out") from None
    opt.load_state_dict(state["opt"])
    torch.set_rng_state(state["rng"])
    return int(state["step"])


def _log(out: Path, row: dict):
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


@contextlib.contextmanager
def flush_denormals():
    """Denormal floats flushed to zero inside (a CPU's arithmetic on them is many times slower; a small network's
    training met them and slowed 2-3x over a few hundred steps), as before after."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _lr(step: int, total: int, base: float, warmup: int = 100) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


# ====================================================================== trained runs
def load_trained_vae(path: str | Path) -> CausalVAE:
    from worldwalk.world.vae import VAEConfig

    st = torch.load(Path(path) / "vae_final.pt", weights_only=False)
    vae = CausalVAE(VAEConfig.from_dict(st["cfg"]))
    vae.load_state_dict(st["vae"])
    return vae.eval()


def save_trained_vae(vae: CausalVAE, path: Path) -> None:
    """What load_trained_vae reads (<run>/vae_final.pt, or a snapshot beside it), on the CPU whatever the training
    device; written to a temporary name first, so a stopped run never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"vae": {k: v.cpu() for k, v in vae.state_dict().items()}, "cfg": vae.cfg.to_dict()}, tmp)
    tmp.replace(path)


def load_trained_world(path: str | Path) -> WorldModel:
    """The model a `train world` run saved (<path>/world_final.pt), or a bundle's model, in eval mode."""
    from worldwalk.world.presets import ModelConfig

    if not Path(path).is_dir():
        from worldwalk.world.bundle import load_bundle
        return load_bundle(path)[0]
    st = torch.load(Path(path) / "world_final.pt", weights_only=False, map_location="cpu")
    model = WorldModel(ModelConfig.from_dict(st["cfg"]))
    model.load_state_dict(st["model"])
    return model.eval()


def save_trained_world(model: WorldModel, d: Path, raw: WorldModel | None = None) -> None:
    """<d>/world_final.pt, what load_trained_world (and so `train bundle --world d`) reads: the model's weights on the
    CPU (they load anywhere), its config, and with `raw` the last raw weights beside an average's. Written to a
    temporary name first, so a stopped run never leaves half a file."""
    cpu = lambda m: {k: v.cpu() for k, v in m.state_dict().items()}  # noqa: E731
    final = {"model": cpu(model), "cfg": model.cfg.to_dict()}
    if raw is not None:
        final["model_raw"] = cpu(raw)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / "world_final.pt.tmp"
    torch.save(final, tmp)
    tmp.replace(d / "world_final.pt")


def load_any_vae(path: str | Path) -> CausalVAE:
    """A `train vae` / `train decoder` run's VAE (<path>/vae_final.pt), or a bundle's VAE."""
    if Path(path).is_dir():
        return load_trained_vae(path)
    from worldwalk.world.bundle import load_bundle
    return load_bundle(path)[1]


def load_start_part(path: str | Path, flag: str, part: str, final: str, stage: str, what: str, make):
    """One of the start picture's networks that the bundle keeps beside the depth network (DepthNet.<part>): a run's
    <final> (`torch.save({part: weights, "cfg": config})`) or the folder holding it, or a bundle's. `make` builds the
    network from the saved config dict; `stage` and `what` name the run and the network in the messages. Raises
    ValueError (one line, naming `flag`)."""
    p = Path(path)
    if p.suffix == ".safetensors":
        from worldwalk.world.train.depth import load_depth_source

        net = getattr(load_depth_source(p, flag), part)
        if net is None:
            raise ValueError(f"{flag} {path}: this bundle has no {what}")
        return net
    p = p / final if p.is_dir() else p
    if not p.is_file():
        raise ValueError(f"{flag} {path}: no such {stage} run (a folder with {final}, or that file)")
    try:
        st = torch.load(p, weights_only=False, map_location="cpu")
        net = make(st["cfg"])
        net.load_state_dict(st[part])
    except Exception as e:  # a file of another stage or a damaged one
        article = "an" if what[0] in "aeiou" else "a"
        raise ValueError(f"{flag} {path}: not {article} {what} ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from None
    return net.eval()


# ====================================================================== latents
def encode_dataset(data: ClipData, vae: CausalVAE, batch: int = 4) -> torch.Tensor:
    """(n, C, T, h, w) normalised latents of every clip."""
    out, dev = [], next(vae.parameters()).device  # on the VAE's device; the latents come back to the CPU
    with torch.no_grad():
        for i in tqdm(range(0, len(data), batch), desc="encode clips", unit="batch", leave=False):
            out.append(vae.encode_video(to_unit(data.frames[i:i + batch]).to(dev)).cpu())
    return torch.cat(out)


def camera_tensors(c2w: np.ndarray, intr: np.ndarray, cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """Per clip: camera_conditions (n, T, 20) and Plücker (n, 6s, T, h, w) on the latent grid."""
    size = (cfg.resolution[1], cfg.resolution[0])
    c = torch.from_numpy(c2w).float()
    c = rays.relative_to_first(c)
    li = torch.from_numpy(to_latent_grid(intr, size, cfg.spatial_factor)).float()[:, None].expand(-1, c.shape[1], 4)
    cc = rays.camera_conditions(c, li, cfg.temporal_stride)
    pl = rays.plucker_raymaps(c, li, cfg.latent_hw, cfg.temporal_stride)
    return cc, pl


def load_latents(dirs: list[str], vae_dir: str, cfg, out: Path, vae: CausalVAE | None = None,
                 clips: dict | None = None, ranks=None) -> list[dict]:
    """Per --dir: {"z" (n, C, T, h, w), "cc", "pl"} of its clips, encoded once and cached in <out>/latents*.pt
    (the first dir's as latents.pt, the later ones' as latents_<i>.pt). A caller that already holds the VAE or a
    dir's ClipData (clips: {dir: ClipData}) passes them, so neither is read twice. Under torchrun (ranks, a
    train/dist.Ranks) each rank reads and encodes its own shards of the clips, and rank 0 joins them into the cache,
    which every rank then reads."""
    sets, clips = [], clips or {}
    for i, d in enumerate(dirs):
        cache = out / ("latents.pt" if i == 0 else f"latents_{i}.pt")
        if ranks is not None and ranks.distributed and not cache.exists() and d not in clips:
            _encode_by_rank(d, vae_dir, cfg, cache, vae, ranks)
        if cache.exists():
            lat = torch.load(cache, weights_only=False)
            if lat.get("dir", str(Path(d).resolve())) != str(Path(d).resolve()):
                raise ValueError(f"{cache}: holds the latents of {lat['dir']}, not of --dir {d}; give the dirs in the "
                                 f"order of the run that wrote it, or another --out")
        else:
            data = clips[d] if d in clips else ClipData(d)
            vae = vae or load_any_vae(vae_dir)
            lat = _latent_set(encode_dataset(data, vae), data.c2w, data.intr, cfg, d)
            torch.save(lat, cache)
        sets.append(lat)
    return sets


def _latent_set(z: torch.Tensor, c2w: np.ndarray, intr: np.ndarray, cfg, d: str) -> dict:
    """What a latents cache holds for --dir d: the clips' latents, camera conditions and Plücker maps."""
    cc, pl = camera_tensors(c2w, intr, cfg)
    return {"z": z, "cc": cc, "pl": pl, "dir": str(Path(d).resolve())}


def _encode_by_rank(d: str, vae_dir: str, cfg, cache: Path, vae: CausalVAE | None, ranks) -> None:
    """Each rank encodes shards rank, rank + N, ... of --dir d into <cache>.rank<r>; rank 0 joins them in shard order
    into `cache` and removes the parts. Every rank returns once the cache is written."""
    data = ClipData(d, part=(ranks.rank, ranks.world))
    mine = cache.with_name(f"{cache.name}.rank{ranks.rank}")
    z = encode_dataset(data, vae or load_any_vae(vae_dir)) if data.shards else None
    bounds = np.cumsum([0] + data.sizes)
    torch.save({s: (z[bounds[j]:bounds[j + 1]], data.c2w[bounds[j]:bounds[j + 1]], data.intr[bounds[j]:bounds[j + 1]])
                for j, s in enumerate(data.shards)}, mine)
    ranks.barrier()
    if ranks.main:
        parts = {}
        for r in range(ranks.world):
            p = cache.with_name(f"{cache.name}.rank{r}")
            parts.update(torch.load(p, weights_only=False))
            p.unlink()
        order = sorted(parts)
        tmp = cache.with_name(cache.name + ".tmp")
        torch.save(_latent_set(torch.cat([parts[s][0] for s in order]), np.concatenate([parts[s][1] for s in order]),
                               np.concatenate([parts[s][2] for s in order]), cfg, d), tmp)
        tmp.replace(cache)
    ranks.barrier()


def chunk_bounds(cfg, T: int) -> list[tuple[int, int]]:
    """[(begin, end)] of the chunks of T latents: (0, first), (first, first + chunk), ... (whole chunks only)."""
    first, step = cfg.first_chunk_frames, cfg.chunk_frames
    return [(0, first)] + [(b, b + step) for b in range(first, T - step + 1, step)]


# the latents a decoded latent's frames depend on: CausalVAE's decoder looks 1 + 2 latents back (dec_in, dec_res)
DECODER_WARMUP = 3


def latent_frames(begin: int, end: int, stride: int) -> np.ndarray:
    """Indices of the frames latents [begin, end) stand for: latent 0 is frame 0 alone, latent j >= 1 is frames
    stride·(j−1)+1 … stride·j."""
    return np.arange(0 if begin == 0 else stride * (begin - 1) + 1, stride * (end - 1) + 1)


@torch.no_grad()
def stream_generate(model: WorldModel, z0: torch.Tensor, cc: torch.Tensor, pl: torch.Tensor,
                    gen: torch.Generator) -> torch.Tensor:
    """What the engine generates with the one-step sampler: from the clean start latent z0 (B, C, 1, h, w), every
    chunk from noise at σ = 1 through the StreamCache (sink + one-chunk window), the cache written from the model's
    own generation. cc (B, T, 20), pl (B, 6s, T, h, w) fix T. -> latents (B, C, T, h, w), latent 0 = z0. Runs on
    z0's device (the model's); the noise is drawn on the CPU from gen, so a seed gives the same noise anywhere."""
    from worldwalk.world.cache import StreamCache

    B, C, _, h, w = z0.shape
    cache = StreamCache(model.cfg, window_chunks=1)
    out = [z0]
    for begin, end in chunk_bounds(model.cfg, cc.shape[1]):
        lo = max(begin, 1)
        eps = torch.randn((B, C, end - lo, h, w), generator=gen).to(z0.device)
        ts = torch.zeros(B, end - begin, device=z0.device)
        ts[:, lo - begin:] = 1000.0
        inp = torch.cat([z0, eps], 2) if begin == 0 else eps
        one_pass = model.cfg.recycle  # one forward per chunk: it writes the cache, reading the last chunk's latents
        v = model(inp, ts, cc[:, begin:end], pl[:, :, begin:end], mode="chunk_causal", frame_offset=begin,
                  cache=cache, write_cache=one_pass, recycled=(out[-1] if begin > 0 else None) if one_pass else None)
        x0 = eps - v[:, :, lo - begin:]
        if not one_pass:
            model(torch.cat([z0, x0], 2) if begin == 0 else x0, torch.zeros_like(ts), cc[:, begin:end],
                  pl[:, :, begin:end], mode="chunk_causal", frame_offset=begin, cache=cache, write_cache=True)
        out.append(x0)
    return torch.cat(out, 2)
