"""Command-line options shared by every front end that drives a world.Session (render, desktop, web)."""
from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import torch

from worldwalk.world.sampler import SamplerConfig, reproject_level, with_reproject


def add_world_args(p: argparse.ArgumentParser) -> None:
    """Which world model to run: shared by every command that drives a Session."""
    g = p.add_argument_group("world model")
    g.add_argument("--weights", help="a world bundle (.safetensors); default: the embedded default in assets/")
    g.add_argument("--preset", default=None, help="with --random-weights: which preset (default tiny)")
    g.add_argument("--random-weights", action="store_true",
                   help="untrained weights (tests, speed measurements): frames are not a world")
    g.add_argument("--steps", type=whole_number(1), default=None,
                   help="denoising steps per chunk (default: the weights' own setting, 1 for the embedded default, "
                        "or the recording's; else 4)")
    g.add_argument("--shift", type=positive_number, default=None,
                   help="schedule shift (default: the weights' own setting, or the recording's; else 8)")
    g.add_argument("--sampler", choices=("renoise", "euler"), default=None,
                   help="update rule (default: the weights' own setting, or the recording's; else renoise)")
    g.add_argument("--reproject", type=reproject_level, default=None,
                   help="start each chunk from what the walk has shown, reprojected into its poses, noised to this "
                        "level where the camera only turns (0-1], or off (default: the weights' own setting, or "
                        "the recording's)")
    g.add_argument("--window", type=whole_number(1), default=1,
                   help="chunks of softmax context kept after the sink (default 1)")
    g.add_argument("--seed", type=seed_value, default=None,
                   help=f"noise seed, 0 to {MAX_SEED} (default 0, or the recording's)")
    g.add_argument("--colour-match", choices=("on", "off"), default=None,
                   help="map decoded colours to the start image's with one affine colour map fitted at start "
                        "(default on, or the recording's)")
    g.add_argument("--start-overlay", choices=("on", "off"), default=None,
                   help="lay the start image, reprojected, over the frames where it sees while the camera is within "
                        "0.25 m of where it was taken: turning on the spot shows the image itself (default on, or "
                        "the recording's; a recording from before it replays without)")
    g.add_argument("--memory", choices=("on", "off"), default=None,
                   help="the 3-D world memory: what the walk has seen (the start image first) is kept as points with "
                        "their predicted depth, laid over the frames where it sees and used as each chunk's starting "
                        "guess, so the world stays put (default on when a depth network is at hand: the weights' own "
                        "or the embedded default's; a replay keeps the recording's). With it on, --reproject sets "
                        "the memory's starting-guess level")
    g.add_argument("--detail", choices=("on", "off"), default=None,
                   help="with the memory: where the frame does not show the start picture, add the start picture's "
                        "own ground texture, fixed to the world, for display (the model and the memory never see it; "
                        "default on, or the recording's; a recording from before it replays without)")
    g.add_argument("--sky", choices=("on", "off"), default=None,
                   help="with the memory: where the frame shows sky no frame has seen, lay the start picture's own sky "
                        "colour at the same elevation over the model's haze (default on, or the recording's; a "
                        "recording from before it replays without)")
    g.add_argument("--ground", choices=("on", "off"), default=None,
                   help="with the memory: where the frame shows ground no frame has seen, move the model's colours "
                        "there towards the start picture's own ground colour at the same elevation (default on, or "
                        "the recording's; a recording from before it replays without)")
    g.add_argument("--sheet", choices=("on", "off"), default=None,
                   help="with the memory: a start picture whose predicted depth follows its texture (a photograph: "
                        "more than a tenth of its pixels on a depth edge) keeps only that depth's broad shape, one "
                        "sheet, so walking in magnifies it whole instead of tearing it (default on, or the "
                        "recording's; a recording from before it replays without)")
    g.add_argument("--skyline", choices=("on", "off"), default=None,
                   help="with the memory: the start picture's standing objects, mirrored round the start camera, "
                        "stand round the whole horizon instead of the model's haze where a turn or a walk goes "
                        "beyond the picture; copies, not the world behind it, and they cost held-out walks PSNR "
                        "(default off, or the recording's)")
    g.add_argument("--device", default="cpu")
    g.add_argument("--dtype", choices=("float32", "bfloat16"), default=None,
                   help="compute dtype (default: bfloat16 for a release directory on CUDA, float32 otherwise)")
    g.add_argument("--prompt", default=None,
                   help="text for the world (a release directory with text_encoder/ and tokenizer/ only); "
                        "default: none, or the recording's")
    g.add_argument("--fp8", action="store_true",
                   help="a release directory's DiT matmul weights stored in fp8 (about half the bf16 memory; "
                        "dequantized layer by layer in the compute dtype)")


#: The largest seed torch.Generator.manual_seed takes (an unsigned 64-bit integer).
MAX_SEED = 2**64 - 1


def check_seed(value, what: str) -> int:
    """A recorded seed (a replayed sidecar's): a whole number from 0 to MAX_SEED. Raises ValueError naming `what`."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEED:
        raise ValueError(f"{what} {value!r}: expected a whole number from 0 to {MAX_SEED}")
    return value


def seed_value(text: str) -> int:
    """Command-line value of --seed: a whole number from 0 to MAX_SEED (what torch's generators accept)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; expected a seed from 0 to {MAX_SEED}") \
            from None
    if not 0 <= v <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range; expected a seed from 0 to {MAX_SEED}")
    return v


def finite_number(text: str, expected: str = "a finite number") -> float:
    """A float from the command line that is finite: "nan", "inf" and the like are refused (argparse's `float`
    takes them, and a NaN reaches the sampler only after the first frame is written)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; expected {expected}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number; expected {expected}")
    return v


def positive_number(text: str) -> float:
    """Command-line value of --shift: a finite number > 0."""
    v = finite_number(text, "a finite number > 0 (e.g. 8)")
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not > 0; expected a finite number > 0 (e.g. 8)")
    return v


def whole_number(minimum: int):
    """argparse type: an int >= minimum (--steps, --window)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; expected one >= {minimum}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is below {minimum}; expected a whole number >= {minimum}")
        return v
    parse.__name__ = f"whole number >= {minimum}"
    return parse


def world_dtype(args, release: bool) -> torch.dtype:
    """--dtype, else bf16 for a release directory on CUDA and float32 otherwise (bundles, random weights, CPU)."""
    if args.dtype:
        return getattr(torch, args.dtype)
    cuda = torch.device(args.device).type == "cuda"
    return torch.bfloat16 if release and cuda else torch.float32


def load_world(args, recorded: dict | None = None):
    """-> (model, vae, description dict for sidecars). `recorded`: the world description of a recording (render
    --replay, a saved walk), whose prompt is used again unless --prompt is given. Sets args.dtype to the dtype the
    world computes in, which the caller's Session is given."""
    from worldwalk.world.bundle import DEFAULT_BUNDLE, load_bundle, load_depth, random_world

    if args.random_weights and args.weights:
        raise ValueError("--random-weights and --weights: choose one")
    path = None if args.random_weights else Path(args.weights) if args.weights else DEFAULT_BUNDLE
    release = path is not None and path.is_dir()
    dtype = world_dtype(args, release)
    args.dtype = str(dtype).removeprefix("torch.")
    prompt, prompt_from = _prompt(args, recorded)
    if not release:
        world = ("the --random-weights world" if path is None else f"the world bundle {path}" if args.weights
                 else "the embedded default world")
        if prompt is not None:
            raise ValueError(f"{prompt_from}: {world} has no text branch; prompts need --weights DIR with "
                             "text_encoder/ and tokenizer/")
        if args.fp8:
            raise ValueError(f"--fp8: only for a release directory (--weights DIR); {world} is small enough as it is")
    if args.random_weights:
        preset = args.preset or "tiny"
        model, vae = random_world(preset, seed=0)
        return model.to(args.device, dtype), vae.to(args.device), {"weights": "random", "preset": preset}
    if release:  # the official SANA-WM release (world/official.py)
        from worldwalk.world.official import load_official
        if args.preset:
            raise ValueError("--preset goes with --random-weights; a release directory is the sana-wm-1600m model")
        return load_official(path, args.device, dtype, prompt=prompt, fp8=args.fp8)
    if not path.exists():
        if args.weights:
            raise ValueError(f"--weights {path}: no such file; expected a world bundle .safetensors file")
        raise ValueError(f"the embedded default world {path} is not in this checkout yet (it is trained in issue 6); "
                         "pass --weights FILE, or --random-weights to run the engine on untrained weights")
    if args.preset:
        raise ValueError("--preset goes with --random-weights; a weights file carries its own configuration")
    model, vae, extra = load_bundle(path, args.device, dtype)
    args.default_sampler = extra.get("sampler")  # the settings the bundle was measured with (sampler_from)
    args.default_memory = extra.get("memory")  # ... and its world memory's (memory_from)
    args.depth_net = load_depth(path, args.device)
    return model, vae, {"weights": str(path), "preset": model.cfg.name}


def memory_from(args, recorded: dict | None = None):
    """-> (MemorySettings or None, DepthNet or None) for a Session: --memory, else a recording's (its settings as
    recorded; off for one made before the memory existed, and without the start view for one made before that), else
    on when a depth network is at hand. The depth network is the weights' own (load_world sets args.depth_net), else
    the embedded default's. --reproject sets the memory's starting-guess level ("off": chunks start from noise)."""
    from worldwalk.world.memory import MemorySettings

    flag = getattr(args, "memory", None)
    settings = getattr(args, "default_memory", None)
    if flag is None and recorded:
        rec = recorded.get("memory")
        if not rec:
            return None, None
        # a recording made before the start view (world/start_view.py) replays without one, one made before the
        # ground detail (world/detail.py) without that, one made before the seams' colours (world/seam.py) or the
        # start picture's own median (MemorySettings.start_median) or the start picture's sky (world/sky.py)
        # without those, one made before a chunk lifted only its last latent frame with every latent lifted, and
        # one made before the start picture's ground colour (world/ground_colour.py) without it, and one made before
        # a render's lone fragments stopped growing into blocks (MemoryConfig.support) with them growing, and one
        # made before the start picture's enclosed far regions took their surroundings' depth (far_field.py) without
        # that, and one made before a latent's guess came from its own frame alone (MemorySettings.guess_still) from
        # all of its frames, and one made before the start view left the rays that miss its surface at once
        # (MemorySettings.start_miss) following them all, and one made before the skyline (world/skyline.py)
        # without it, and one made before the far field's edge moved to the picture's (MemorySettings.sky_edge) or
        # the holes behind objects took what lies behind them (world/disocclusion.py) without those, and one made
        # before a photograph's depth became one sheet (world/sheet.py) with the depth as predicted, and one made
        # before the start picture's rims were lifted (world/rims.py) without them, and one made before the guess
        # took the start picture's sky and ground colours where the memory does not see (guess_prior) without that
        old = {"start_scale": 0, "detail": 0, "seam": 0, "start_median": 0, "sky": 0, "lift_last": 0, "ground": 0,
               "open_sky": False, "guess_still": False, "start_miss": 0, "skyline": False, "sky_edge": 0,
               "behind": 0, "sheet": 0, "rims": False, "guess_prior": False}
        settings = {**old, **rec} if isinstance(rec, dict) else rec
        if isinstance(rec, dict) and isinstance(rec.get("config"), dict):
            settings["config"] = {"support": 0, **rec["config"]}
    if flag == "off":
        return None, None
    depth = getattr(args, "depth_net", None) or _default_depth(args.device)
    if depth is None:
        if flag == "on":
            raise ValueError("--memory on: no depth network at hand (neither these weights nor the embedded default "
                             "world carry one); use --memory off")
        return None, None
    try:
        ms = MemorySettings.from_dict(settings or {})
    except (ValueError, TypeError) as e:
        raise ValueError(f"memory settings: {e}") from None
    level = getattr(args, "reproject", None)
    if level is not None:
        ms = dataclasses.replace(ms, guess=None if level == "off" else float(level))
    detail = getattr(args, "detail", None)
    if detail is not None:
        ms = dataclasses.replace(ms, detail=1.0 if detail == "on" else 0.0)
    sky = getattr(args, "sky", None)
    if sky is not None:
        ms = dataclasses.replace(ms, sky=1.0 if sky == "on" else 0.0)
    ground = getattr(args, "ground", None)
    if ground is not None:
        ms = dataclasses.replace(ms, ground=1.0 if ground == "on" else 0.0)
    sheet = getattr(args, "sheet", None)
    if sheet is not None:
        ms = dataclasses.replace(ms, sheet=MemorySettings.sheet if sheet == "on" else 0.0)
    skyline = getattr(args, "skyline", None)
    if skyline is not None:
        ms = dataclasses.replace(ms, skyline=skyline == "on")
    return ms, depth


def _default_depth(device):
    """The embedded default world's depth network, or None when the checkout has no such bundle or it has none."""
    from worldwalk.world.bundle import DEFAULT_BUNDLE, load_depth

    return load_depth(DEFAULT_BUNDLE, device) if DEFAULT_BUNDLE.is_file() else None


def _prompt(args, recorded: dict | None) -> tuple[str | None, str]:
    """-> (the prompt, the words an error names it by): --prompt, else the recording's."""
    if args.prompt is not None:
        return args.prompt, "--prompt"
    recorded_prompt = (recorded or {}).get("prompt")
    if isinstance(recorded_prompt, str):
        return recorded_prompt, f"the recording's prompt {recorded_prompt!r}"
    return None, "--prompt"


def _switch_from(args, name: str, recorded: dict | None, before: bool) -> bool:
    """An on/off world option: --NAME, else a recording's setting (`before` for a recording made before the option
    existed), else on. An empty recording ({}: not a replay) counts as none."""
    flag = getattr(args, name, None)
    if flag is not None:
        return flag == "on"
    return bool(recorded.get(name, before)) if recorded else True


def colour_match_from(args, recorded: dict | None = None) -> bool:
    """--colour-match, else the recording's setting, else on."""
    return _switch_from(args, "colour_match", recorded, before=True)


def start_overlay_from(args, recorded: dict | None = None) -> bool:
    """--start-overlay, else the recording's setting (off for one made before the overlay existed), else on."""
    return _switch_from(args, "start_overlay", recorded, before=False)


def sampler_from(args, recorded: dict | None = None) -> SamplerConfig:
    """Sampler settings: a recording's, else the loaded bundle's own (load_world sets args.default_sampler),
    else the defaults; --steps / --shift / --sampler / --reproject override."""
    base = dict(recorded or getattr(args, "default_sampler", None) or {})
    base.pop("timesteps", None) if args.steps or args.shift else None
    if base.get("timesteps") is not None:
        base["timesteps"] = tuple(base["timesteps"])
    for k in ("steps", "shift"):
        if getattr(args, k) is not None:
            base[k] = getattr(args, k)
    if args.sampler:
        base["kind"] = args.sampler
    return SamplerConfig(**with_reproject(base, getattr(args, "reproject", None))).validate()


def world_factory(args, recorded: dict | None = None, window: int | None = None):
    """The one world factory of every front end (render, explorer, web): the world loaded once from the options (and a
    recording's or saved walk's settings, `recorded`), then -> (make_session, world description for sidecars), where
    make_session() is a fresh Session with the options' sampler, window, device, dtype, colour match, start overlay
    and world memory. Raises ValueError (one line) for a bad option."""
    from worldwalk.world.session import Session

    model, vae, desc = load_world(args, recorded)
    sampler = sampler_from(args, recorded.get("sampler") if recorded else None)
    memory, depth = memory_from(args, recorded)
    colour_match, start_overlay = colour_match_from(args, recorded), start_overlay_from(args, recorded)
    dtype = getattr(torch, args.dtype)
    window = window or args.window

    def make_session() -> Session:
        return Session(model, vae, sampler, window_chunks=window, device=args.device, dtype=dtype,
                       colour_match=colour_match, start_overlay=start_overlay, memory=memory, depth=depth)
    return make_session, desc
