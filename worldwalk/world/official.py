"""The official SANA-WM release, read from a local directory (nothing is ever fetched from the network).

    model, vae, desc = load_official("~/SANA-WM_streaming", device="cuda")   # bf16 on CUDA, float32 on CPU

DIR may hold either released layout (both are Hugging Face repositories the user downloaded beforehand):

    Efficient-Large-Model/SANA-WM_streaming       sana_dit/model.pt      a training dict; weights under "generator",
                                                                         every key prefixed "model."
                                                  ltx2_causal_vae/       the causal LTX-2 decoder (diffusers folder)
    Efficient-Large-Model/SANA-WM_bidirectional   dit/*.safetensors      the same tensor names, unprefixed
                                                  vae/                   diffusers AutoencoderKLLTX2Video folder

Where both DiT files are present the streaming one wins (it is the distilled model our Session drives); where both VAE
folders are present `ltx2_causal_vae/` wins. Weights map strictly onto the `sana-wm-1600m` preset: a checkpoint of
another size is reported as such before any tensor is copied; missing / unexpected / mis-shaped tensors are listed in
one CheckpointError.

Our one addition to the layout: an optional `DIR/worldwalk_config.json` holding a ModelConfig (world.presets) for a
checkpoint of the same architecture at another size (the small synthetic releases of the tests, fine-tunes).

Text: the release conditions on Gemma-2-2B-it hidden states. A prompt (`launch.py ... --prompt TEXT`) needs
`DIR/text_encoder/` + `DIR/tokenizer/` (diffusers layout, from google/gemma-2-2b-it); `encode_prompt` formats it as
the release does, once per walk, and frees the encoder before the DiT is loaded. Without a prompt the model runs with
its cross-attention skipped (`text=None`), our documented null conditioning; see `null_text` for why.

Memory: bf16 on CUDA by default (float32 on CPU); `fp8=True` (`--fp8`) stores the DiT's matmul weights in fp8 with
per-channel scales, about half the bf16 bytes (world/fp8.py).

The VAE adapter `LTX2VAE` wraps diffusers' `AutoencoderKLLTX2Video` behind world.vae.VideoVAE, with the release's
latent normalisation `(z − mean) · scaling_factor / std`. A causal decoder streams exactly: every causal time conv keeps
the last k−1 input frames of the previous chunk instead of replicating the chunk's first frame, and the temporal
upsamplers drop their leading frames only on the very first chunk, so chunk-by-chunk decoding equals decoding the
whole clip (up to float rounding). A non-causal decoder (a plain `vae/`) cannot stream exactly; it decodes each chunk
with the previous `context_latents` latents in front and drops the frames they re-produce (close, not exact).
"""
from __future__ import annotations

import gc
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from worldwalk.world.checkpoint import CheckpointError, LazySafetensors, UnreadableFile, load_state_dict_strict
from worldwalk.world.presets import ModelConfig, get_preset
from worldwalk.world.vae import VideoVAE

OFFICIAL_PRESET = "sana-wm-1600m"
HF_STREAMING = "Efficient-Large-Model/SANA-WM_streaming"
HF_BIDIRECTIONAL = "Efficient-Large-Model/SANA-WM_bidirectional"
STREAMING_DIT = "sana_dit/model.pt"
BIDIRECTIONAL_DIT = "dit/*.safetensors"
VAE_DIRS = ("ltx2_causal_vae", "vae")  # first found wins
CONFIG_OVERRIDE = "worldwalk_config.json"
TRUST_PICKLE_ENV = "WORLDWALK_TRUST_CHECKPOINT"


class OfficialError(CheckpointError):
    """The release directory cannot be used; one line naming what is wrong and what was expected."""


# ---------------------------------------------------------------------------------------------------------------- files
@dataclass(frozen=True)
class ReleaseFiles:
    root: Path
    layout: str  # "streaming" | "bidirectional"
    dit: tuple[Path, ...]
    vae: Path
    text_encoder: Path | None = None
    tokenizer: Path | None = None


def _expected(root: Path) -> str:
    return (f"expected {root}/{STREAMING_DIT} (from {HF_STREAMING}) or {root}/{BIDIRECTIONAL_DIT} (from "
            f"{HF_BIDIRECTIONAL}), plus a VAE folder {root}/ltx2_causal_vae/ or {root}/vae/ (config.json + "
            "diffusion_pytorch_model.safetensors); nothing is downloaded: fetch them first, e.g. "
            f"`huggingface-cli download {HF_STREAMING} --local-dir {root}`")


def find_release(root: str | Path) -> ReleaseFiles:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise OfficialError(f"--weights {root}: no such directory; " + _expected(root))
    streaming = root / STREAMING_DIT
    shards = tuple(sorted((root / "dit").glob("*.safetensors"))) if (root / "dit").is_dir() else ()
    vae = next((root / d for d in VAE_DIRS if (root / d / "config.json").is_file()), None)
    missing = []
    if not streaming.is_file() and not shards:
        missing.append(f"the DiT weights ({STREAMING_DIT} or {BIDIRECTIONAL_DIT})")
    if vae is None:
        missing.append("the VAE (ltx2_causal_vae/config.json or vae/config.json)")
    if missing:
        raise OfficialError(f"--weights {root}: not a SANA-WM release: missing {' and '.join(missing)}; "
                            + _expected(root))
    te, tok = root / "text_encoder", root / "tokenizer"
    has_text = (te / "config.json").is_file() and tok.is_dir()
    layout, dit = ("streaming", (streaming,)) if streaming.is_file() else ("bidirectional", shards)
    return ReleaseFiles(root, layout, dit, vae, te if has_text else None, tok if has_text else None)


# ---------------------------------------------------------------------------------------------------------------- DiT
def _read_safetensors(paths) -> LazySafetensors:
    """The dit/ shards as one lazy mapping: headers checked now, each tensor read when it is copied into the model."""
    try:
        return LazySafetensors(paths)
    except UnreadableFile as e:
        p, _, why = str(e).partition(": ")
        raise OfficialError(f"{p}: not a readable safetensors file ({why}); download it again from "
                            f"{HF_BIDIRECTIONAL}") from None
    except KeyError as e:
        raise OfficialError(f"{e.args[0]}; keep one checkpoint in dit/") from None


def _read_training_dict(path: Path) -> dict[str, torch.Tensor]:
    """sana_dit/model.pt: {"generator": {"model.<name>": tensor, ...}, ...} -> {<name>: tensor}."""
    import pickle
    import zipfile

    trust = os.environ.get(TRUST_PICKLE_ENV) == "1"
    try:
        # mmap: a 2.6B-parameter fp32 dict is ~10 GB; map it instead of reading it (needs the zip format)
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=not trust, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            obj = torch.load(str(path), map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e):
            raise OfficialError(f"{path}: holds Python objects beyond tensors and plain containers, which are not "
                                f"unpickled by default (that would run code from the file); if you trust the file, "
                                f"set {TRUST_PICKLE_ENV}=1") from None
        raise OfficialError(f"{path}: not a readable torch checkpoint ({_first_line(e)}); download it again from "
                            f"{HF_STREAMING}") from None
    except (OSError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile, AttributeError, ImportError) as e:
        raise OfficialError(f"{path}: not a readable torch checkpoint ({_first_line(e)}); download it again from "
                            f"{HF_STREAMING}") from None
    gen = obj.get("generator") if isinstance(obj, dict) else None
    if not isinstance(gen, dict):
        keys = sorted(map(str, obj))[:6] if isinstance(obj, dict) else type(obj).__name__
        raise OfficialError(f"{path}: expected a training dict with the weights under 'generator', found {keys}")
    out, stray = {}, []
    for k, v in gen.items():
        if not torch.is_tensor(v):
            continue
        if isinstance(k, str) and k.startswith("model."):
            out[k[len("model."):]] = v
        else:
            stray.append(str(k))
    if stray:
        raise OfficialError(f"{path}: generator weights without the 'model.' prefix ({', '.join(stray[:4])}); "
                            "expected every key as 'model.<tensor name>'")
    return out


def _shape_of(tensors: dict[str, torch.Tensor]) -> dict:
    """Architecture read off the tensors (enough to tell one size from another)."""
    x = tensors.get("x_embedder.proj.weight")
    blocks = {int(m.group(1)) for k in tensors if (m := re.match(r"blocks\.(\d+)\.", k))}
    fc1 = tensors.get("y_embedder.y_proj.fc1.weight")
    pl = tensors.get("plucker_embedder.proj.weight")
    return {"depth": (max(blocks) + 1) if blocks else 0,
            "hidden": int(x.shape[0]) if x is not None else None,
            "latent_channels": int(x.shape[1]) if x is not None and x.ndim > 1 else None,
            "caption_channels": int(fc1.shape[1]) if fc1 is not None else None,
            "plucker_channels": int(pl.shape[1]) if pl is not None and pl.ndim > 1 else None}


def check_size(tensors: dict[str, torch.Tensor], cfg: ModelConfig, source: str) -> None:
    """One clear line when the file is a model of another size, before the per-tensor listing would drown it."""
    got = _shape_of(tensors)
    want = {"depth": cfg.depth, "hidden": cfg.hidden, "latent_channels": cfg.latent_channels,
            "caption_channels": cfg.caption_channels, "plucker_channels": cfg.plucker_channels}
    if got["hidden"] is None:
        raise OfficialError(f"{source}: has no x_embedder.proj.weight: not a SANA-WM DiT checkpoint")
    diff = [k for k in want if got[k] != want[k]]
    if diff:
        raise OfficialError(f"{source}: is not the {cfg.name} shape: "
                            + ", ".join(f"{k.replace('_', ' ')} {got[k]} (expected {want[k]})" for k in diff))


def default_dtype(device) -> torch.dtype:
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def release_config(root: str | Path) -> ModelConfig:
    """sana-wm-1600m, or the ModelConfig in DIR/worldwalk_config.json (a same-architecture model of another size)."""
    p = Path(root) / CONFIG_OVERRIDE
    if not p.is_file():
        return get_preset(OFFICIAL_PRESET)
    try:
        return ModelConfig.from_dict(json.loads(p.read_text()))
    except (ValueError, TypeError) as e:
        raise OfficialError(f"{p}: not a model config ({_first_line(e)})") from None


def load_official_model(files: ReleaseFiles, cfg: ModelConfig | None = None, device="cpu",
                        dtype: torch.dtype | None = None, fp8: bool = False):
    """-> WorldModel (eval) with the release's DiT weights, in `dtype` (default: bf16 on CUDA, float32 on CPU).

    fp8: the matmul weights stored as float8_e4m3fn with per-channel scales (world/fp8.py), computing in `dtype`;
    quantized on the CPU before the move, so the device never holds the `dtype` copy of those weights."""
    from worldwalk.world.model import WorldModel

    cfg = cfg or release_config(files.root)
    dtype = dtype or default_dtype(device)
    if fp8:
        from worldwalk.world.fp8 import DIT_KEEP, quantize_fp8, require_fp8
        require_fp8()  # before reading gigabytes
    if files.layout == "streaming":
        tensors, source = _read_training_dict(files.dit[0]), str(files.dit[0])
    else:
        tensors, source = _read_safetensors(files.dit), ", ".join(map(str, files.dit))
    check_size(tensors.meta() if isinstance(tensors, LazySafetensors) else tensors, cfg, source)
    with torch.device("meta"):
        model = WorldModel(cfg)
    # allocate once, in the target dtype and place (on the CPU first where fp8 quantizes)
    model = model.to(dtype).to_empty(device="cpu" if fp8 else device)
    load_state_dict_strict(model, tensors, source)  # copies (and casts) tensor by tensor; IGNORED_KEYS dropped
    del tensors
    if fp8:
        model = quantize_fp8(model, keep=DIT_KEEP).to(device)
    return model.eval()


# ---------------------------------------------------------------------------------------------------------------- VAE
class _VAEDescription:
    """What Session's snapshot id reads of a VAE (`cfg.to_dict()`)."""

    def __init__(self, d: dict):
        self._d = json.loads(json.dumps({k: v for k, v in d.items() if not k.startswith("_")}, default=list))

    def to_dict(self) -> dict:
        return dict(self._d)


class LTX2VAE(VideoVAE):
    """diffusers AutoencoderKLLTX2Video behind the engine's VideoVAE interface (see module doc)."""

    def __init__(self, ae, context_latents: int = 2):
        super().__init__()
        self.ae = ae
        c = ae.config
        self.latent_channels = int(c.latent_channels)
        self.spatial_factor = int(ae.spatial_compression_ratio)
        self.temporal_stride = int(ae.temporal_compression_ratio)
        self.causal = bool(c.decoder_causal)
        self.context_latents = context_latents
        self.cfg = _VAEDescription({**dict(c), "adapter": "LTX2VAE", "context_latents": context_latents})

    # normalisation of the release (pipeline_sana_wm: _encode_first_frame / _decode_latents)
    def _stats(self, z):
        mean = self.ae.latents_mean.view(1, -1, 1, 1, 1).to(z)
        std = self.ae.latents_std.view(1, -1, 1, 1, 1).to(z)
        return mean, std, float(self.ae.config.scaling_factor)

    def normalise(self, z):
        mean, std, sf = self._stats(z)
        return (z - mean) * sf / std

    def denormalise(self, z):
        mean, std, sf = self._stats(z)
        return z / sf * std + mean

    def encode_image(self, img: torch.Tensor) -> torch.Tensor:
        """img (B, 3, H, W) in [-1, 1] -> normalised latent frame 0 (B, C, 1, h, w) (posterior mode)."""
        z = self.ae.encode(img[:, :, None].to(self.ae.dtype)).latent_dist.mode()
        return self.normalise(z)

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        return self.normalise(self.ae.encode(frames.to(self.ae.dtype)).latent_dist.mode())

    def new_decode_cache(self) -> dict:
        return {}

    def _temb(self, z):
        if not self.ae.config.timestep_conditioning:
            return None
        return torch.zeros(z.shape[0], device=z.device, dtype=z.dtype)  # decode at t = 0 (clean latents)

    def decode_chunk(self, latents: torch.Tensor, cache: dict, cameras=None) -> torch.Tensor:
        """Normalised latents (B, C, T, h, w) -> frames (B, 3, F, H, W) in [-1, 1], continuing the walk in `cache`
        (cameras: not read; the interface's, for decoders with grain)."""
        z = self.denormalise(latents.to(self.ae.dtype))
        first = not cache.get("started", False)
        if self.causal:
            with _streaming(self.ae.decoder, cache, first):
                out = self.ae.decoder(z, self._temb(z), causal=True)
        else:
            ctx = cache.get("context")
            zz = z if ctx is None else torch.cat([ctx.to(z), z], 2)
            out = self.ae.decoder(zz, self._temb(z), causal=False)
            if ctx is not None:  # drop the frames of the context latents (1 + s·(n − 1) of them)
                out = out[:, :, 1 + self.temporal_stride * (ctx.shape[2] - 1):]
            if self.context_latents:
                cache["context"] = zz[:, :, -self.context_latents:].detach()
        cache["started"] = True
        return out

    def decode_video(self, latents: torch.Tensor) -> torch.Tensor:
        """The whole clip in one call (the reference the streamed decode is checked against)."""
        z = self.denormalise(latents.to(self.ae.dtype))
        return self.ae.decoder(z, self._temb(z), causal=self.causal)


class _streaming:
    """Inside: the decoder's causal time convs read their left context from `cache` (and write it back), and its
    temporal upsamplers drop their leading frames only when `first`. Patched per instance, undone on exit."""

    def __init__(self, decoder, cache: dict, first: bool):
        from diffusers.models.autoencoders.autoencoder_kl_ltx2 import LTX2VideoCausalConv3d, LTX2VideoUpsampler3d

        self.decoder, self.cache, self.first = decoder, cache, first
        self.convs = [(n, m) for n, m in decoder.named_modules() if isinstance(m, LTX2VideoCausalConv3d)]
        self.ups = [m for m in decoder.modules() if isinstance(m, LTX2VideoUpsampler3d)]

    def __enter__(self):
        cache = self.cache
        for name, m in self.convs:
            def conv_forward(x, causal=True, m=m, key=f"conv.{name}"):
                k = m.kernel_size[0]
                if k == 1:
                    return m.conv(x)
                prev = cache.get(key)
                pad = x[:, :, :1].expand(-1, -1, k - 1, -1, -1) if prev is None else prev.to(x)
                ext = torch.cat([pad, x], 2)
                cache[key] = ext[:, :, -(k - 1):].detach().clone()
                return m.conv(ext)
            m.forward = conv_forward
        for m in self.ups:
            m.forward = lambda x, causal=True, m=m: _upsample(m, x, self.first)
        return self

    def __exit__(self, *exc):
        for _, m in self.convs:
            del m.forward
        for m in self.ups:
            del m.forward
        return False


def _upsample(m, x: torch.Tensor, first: bool) -> torch.Tensor:
    """LTX-2's depth-to-space upsampler (conv -> (st, sh, sw) shuffle, optional residual); the st−1 leading frames
    (causal first frame) are dropped on the first chunk of a walk only."""
    B, _, T, H, W = x.shape
    st, sh, sw = m.stride
    drop = st - 1 if first else 0

    def shuffle(t):
        t = t.reshape(B, -1, st, sh, sw, T, H, W).permute(0, 1, 5, 2, 6, 3, 7, 4)
        return t.flatten(6, 7).flatten(4, 5).flatten(2, 3)

    out = shuffle(m.conv(x))[:, :, drop:]
    if m.residual:
        res = shuffle(x).repeat(1, (st * sh * sw) // m.upscale_factor, 1, 1, 1)[:, :, drop:]
        out = out + res
    return out


def load_official_vae(path: Path, device="cpu", dtype: torch.dtype | None = None) -> LTX2VAE:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from diffusers import AutoencoderKLLTX2Video
    except ImportError as e:
        raise OfficialError(f"the release's LTX-2 VAE needs diffusers ({_first_line(e)}); install the sana extra: "
                            "pip install -e '.[sana]'") from None
    weights = sorted(path.glob("diffusion_pytorch_model*.safetensors")) + sorted(path.glob("*.bin"))
    if not weights:
        raise OfficialError(f"{path}: no diffusion_pytorch_model.safetensors beside its config.json; download the "
                            f"VAE folder again from {HF_STREAMING if path.name == VAE_DIRS[0] else HF_BIDIRECTIONAL}")
    from diffusers.utils import logging as dlogging

    verbosity = dlogging.get_verbosity()
    dlogging.set_verbosity_error()  # no "install accelerate" advice on every start
    try:
        ae = AutoencoderKLLTX2Video.from_pretrained(str(path), local_files_only=True, torch_dtype=dtype)
    except Exception as e:  # noqa: BLE001 — diffusers raises many kinds (OSError, ValueError, SafetensorError, EnvironmentError…)
        raise OfficialError(f"{path}: not a loadable LTX-2 VAE folder ({type(e).__name__}: {_first_line(e)})") \
            from None
    finally:
        dlogging.set_verbosity(verbosity)
    return LTX2VAE(ae.to(device).eval()).eval()


# ---------------------------------------------------------------------------------------------------------------- text
def null_text():
    """Our null conditioning when no text encoder is present: None, i.e. the cross-attention is skipped.

    The release never runs without a prompt: its "empty" conditioning (the negative prompt of CFG) is Gemma-2's hidden
    states of "" — a BOS token with mask [1, 0, 0, …]. Without Gemma those states cannot be produced, and a fake token
    (zeros through y_embedder) adds a constant the model never saw; skipping the text residual leaves every image token
    unchanged by text, the closest thing to "no prompt" the weights allow. The distilled model runs at CFG 1, so no
    unconditional branch is needed either."""


def encode_prompt(files: ReleaseFiles, prompt: str, device="cpu", max_sequence_length: int = 300,
                  offload: bool = True, dtype: torch.dtype | None = None):
    """Gemma-2-2B-it hidden states of the release's prompt formatting -> (text (1, L, 2304) float32, mask (1, L) bool),
    L = max_sequence_length.

    The release prepends its chi prompt (the "Enhanced prompt" instruction), pads right to len(chi) + L − 2 tokens
    (BOS included), and keeps the BOS token plus the last L − 1 positions. The states are the encoder's last hidden
    state, after Gemma's final RMSNorm (what the release reads as `hidden_states[-1]` of Gemma2ForCausalLM); we run
    the base Gemma2Model only, which skips the 256k-word LM head. The encoder runs in `dtype` (default: bf16 on CUDA,
    float32 on CPU); with `offload` it is freed right after use, before the DiT is loaded."""
    tok, enc = load_text_encoder(files, device, dtype or default_dtype(device))
    chi = "\n".join(chi_prompt())
    length = len(tok.encode(chi)) + max_sequence_length - 2
    t = tok([chi + prompt], max_length=length, padding="max_length", padding_side="right", truncation=True,
            return_tensors="pt").to(device)
    try:
        with torch.inference_mode():
            h = enc.base_model(input_ids=t.input_ids, attention_mask=t.attention_mask).last_hidden_state  # (1, N, D)
    except (IndexError, RuntimeError, ValueError) as e:  # e.g. a tokenizer whose ids the encoder does not know
        raise OfficialError(f"{files.text_encoder}: failed on the tokenizer's output ({_first_line(e)}); "
                            "text_encoder/ and tokenizer/ must come from the same model") from None
    select = [0] + list(range(-max_sequence_length + 1, 0))
    text, mask = h[:, select].float(), t.attention_mask[:, select].bool()
    if offload:
        del enc, h
        gc.collect()
        if torch.device(device).type == "cuda":
            torch.cuda.empty_cache()
    return text, mask


def chi_prompt() -> list[str]:
    """The release's instruction prefix (diffusers keeps the public copy: pipelines/sana_wm)."""
    try:
        from diffusers.pipelines.sana_wm.pipeline_sana_wm import DEFAULT_CHI_PROMPT
    except ImportError as e:
        raise OfficialError(f"prompt: needs diffusers >= 0.42 for the release's prompt prefix ({_first_line(e)}); "
                            "pip install -e '.[sana]'") from None
    return DEFAULT_CHI_PROMPT


def load_text_encoder(files: ReleaseFiles, device, dtype: torch.dtype):
    """-> (tokenizer, Gemma-2 model in eval) from DIR/tokenizer and DIR/text_encoder, offline and quietly."""
    if files.text_encoder is None:
        raise OfficialError(f"prompt: no text encoder in {files.root} (expected text_encoder/config.json and "
                            "tokenizer/ from google/gemma-2-2b-it, as in the diffusers layout); leave the prompt out")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise OfficialError(f"prompt: needs transformers ({_first_line(e)}); pip install -e '.[sana]'") from None
    with _quiet_transformers():
        try:
            tok = AutoTokenizer.from_pretrained(str(files.tokenizer), local_files_only=True)
        except Exception as e:  # noqa: BLE001 — transformers raises many kinds
            raise OfficialError(f"{files.tokenizer}: not a loadable tokenizer ({_first_line(e)})") from None
        try:
            enc = AutoModelForCausalLM.from_pretrained(str(files.text_encoder), local_files_only=True,
                                                       torch_dtype=dtype)
        except Exception as e:  # noqa: BLE001
            raise OfficialError(f"{files.text_encoder}: not a loadable Gemma-2 text encoder ({_first_line(e)})") \
                from None
    return tok, enc.to(device).eval()


class _quiet_transformers:
    """Inside: transformers logs errors only and shows no progress bars (a one-line CLI stays one line)."""

    def __enter__(self):
        from transformers.utils import logging as tlogging

        self.log, self.verbosity, self.bars = tlogging, tlogging.get_verbosity(), tlogging.is_progress_bar_enabled()
        tlogging.set_verbosity_error()
        tlogging.disable_progress_bar()
        return self

    def __exit__(self, *exc):
        self.log.set_verbosity(self.verbosity)
        if self.bars:
            self.log.enable_progress_bar()
        return False


class PromptedWorld(torch.nn.Module):
    """A WorldModel with fixed text conditioning: every forward gets `text`/`text_mask` (Session passes none)."""

    def __init__(self, model, text: torch.Tensor, mask: torch.Tensor):
        super().__init__()
        self.inner, self.cfg = model, model.cfg
        self.register_buffer("text", text, persistent=False)
        self.register_buffer("text_mask", mask, persistent=False)

    def forward(self, *args, **kw):
        kw.setdefault("text", self.text)
        kw.setdefault("text_mask", self.text_mask)
        return self.inner(*args, **kw)


# ---------------------------------------------------------------------------------------------------------------- all
def load_official(root: str | Path, device="cpu", dtype: torch.dtype | None = None, prompt: str | None = None,
                  cfg: ModelConfig | None = None, fp8: bool = False):
    """-> (model, vae, description) from a release directory (see module doc). prompt: encoded once, before the DiT
    is loaded, and fed to every forward (PromptedWorld); fp8: the DiT's matmul weights in fp8 (world/fp8.py)."""
    files = find_release(root)
    dtype = dtype or default_dtype(device)
    cfg = cfg or release_config(files.root)
    text = None
    if prompt is not None:
        text = encode_prompt(files, prompt, device, dtype=dtype)  # the encoder is freed before the big load
        if text[0].shape[-1] != cfg.caption_channels:
            raise OfficialError(f"{files.text_encoder}: hidden size {text[0].shape[-1]} does not fit the DiT's "
                                f"caption channels {cfg.caption_channels} (expected Gemma-2-2B-it)")
    model = load_official_model(files, cfg, device, dtype, fp8=fp8)
    vae = load_official_vae(files.vae, device, dtype)
    if (vae.latent_channels, vae.spatial_factor, vae.temporal_stride) != \
            (cfg.latent_channels, cfg.spatial_factor, cfg.temporal_stride):
        raise OfficialError(f"{files.vae}: a VAE of {vae.latent_channels} channels, x{vae.spatial_factor} spatial, "
                            f"x{vae.temporal_stride} temporal does not fit {cfg.name} ({cfg.latent_channels}, "
                            f"x{cfg.spatial_factor}, x{cfg.temporal_stride})")
    if text is not None:
        model = PromptedWorld(model, text[0].to(device), text[1].to(device))
    desc = {"weights": str(files.root), "preset": cfg.name, "layout": files.layout,
            "dit": [str(p.relative_to(files.root)) for p in files.dit], "vae": files.vae.name,
            "text": "gemma-2" if text is not None else "none (cross-attention skipped)"}
    if prompt is not None:
        desc["prompt"] = prompt  # a replay (render --replay) encodes it again
    if fp8:
        desc["fp8"] = True
    return model, vae, desc


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    s = s.splitlines()[0] if s else type(e).__name__
    return s.split(". ")[0] if len(s) > 160 else s  # torch's zip errors run on for several sentences
