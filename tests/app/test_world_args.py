"""app.world_args: the world options every front end shares (dtype defaults, release-only options)."""
import argparse

import pytest
import torch

from worldwalk.app.world_args import add_world_args, colour_match_from, load_world, sampler_from, start_overlay_from, world_dtype


def parse(*argv):
    p = argparse.ArgumentParser()
    add_world_args(p)
    return p.parse_args(list(argv))


@pytest.mark.parametrize("argv,release,want", [
    ([], True, torch.float32),  # CPU: float32, release or not
    (["--device", "cuda"], True, torch.bfloat16),  # a release on CUDA: bf16
    (["--device", "cuda:1"], True, torch.bfloat16),
    (["--device", "cuda"], False, torch.float32),  # bundles and random weights stay float32
    (["--device", "cuda", "--dtype", "float32"], True, torch.float32),  # an explicit choice is honoured
    (["--dtype", "bfloat16"], False, torch.bfloat16),
])
def test_dtype_defaults(argv, release, want):
    assert world_dtype(parse(*argv), release) == want


def test_load_world_records_the_dtype_it_chose():
    args = parse("--random-weights", "--preset", "test")
    model, _, desc = load_world(args)
    assert args.dtype == "float32" and next(model.parameters()).dtype == torch.float32
    assert desc == {"weights": "random", "preset": "test"}  # no prompt, no fp8: nothing extra in sidecars


def test_a_recorded_prompt_is_used_unless_prompt_is_given():
    with pytest.raises(ValueError, match=r"^the recording's prompt 'a cave': the --random-weights world"):
        load_world(parse("--random-weights", "--preset", "test"), {"prompt": "a cave"})
    with pytest.raises(ValueError, match=r"^--prompt: the --random-weights world"):
        load_world(parse("--random-weights", "--preset", "test", "--prompt", "a beach"), {"prompt": "a cave"})
    load_world(parse("--random-weights", "--preset", "test"), {"prompt": None, "seed": 3})  # no prompt recorded


@pytest.mark.parametrize("argv,recorded,want", [
    ([], None, True),  # on by default
    ([], {"colour_match": False}, False),  # a recording made without it is replayed without it
    ([], {"seed": 1}, True),  # a recording from before the option: on
    (["--colour-match", "on"], {"colour_match": False}, True),  # the flag wins
    (["--colour-match", "off"], None, False),
])
def test_colour_match_from(argv, recorded, want):
    assert colour_match_from(parse(*argv), recorded) is want


@pytest.mark.parametrize("argv,recorded,want", [
    ([], None, True),  # on for a new walk
    ([], {}, True),  # render's empty recording: not a replay
    ([], {"start_overlay": True}, True),
    ([], {"seed": 1, "colour_match": True}, False),  # a recording from before the option is replayed as it was made
    (["--start-overlay", "on"], {"seed": 1}, True),  # the flag wins
    (["--start-overlay", "off"], None, False),
])
def test_start_overlay_from(argv, recorded, want):
    assert start_overlay_from(parse(*argv), recorded) is want


def test_bad_start_overlay_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        parse("--start-overlay", "maybe")
    assert e.value.code == 2 and "--start-overlay" in capsys.readouterr().err


@pytest.mark.parametrize("argv,recorded,bundle,want", [
    ([], None, {"steps": 1, "reproject": 0.5}, 0.5),  # the weights' own setting
    ([], {"steps": 1}, {"steps": 1, "reproject": 0.5}, None),  # a recording made without it replays without it
    (["--reproject", "off"], None, {"steps": 1, "reproject": 0.5}, None),
    (["--reproject", "0.3"], {"steps": 1}, None, 0.3),  # the flag wins
])
def test_reproject_from(argv, recorded, bundle, want):
    args = parse(*argv)
    args.default_sampler = bundle
    assert sampler_from(args, recorded).reproject == want


@pytest.mark.parametrize("bad", ["0", "1.5", "half"])
def test_bad_reproject_level_is_one_line(bad, capsys):
    with pytest.raises(SystemExit) as e:
        parse("--reproject", bad)
    assert e.value.code == 2
    assert "expected a noise level in (0, 1]" in capsys.readouterr().err


def test_memory_from_flag_recording_and_depth(monkeypatch):
    """--memory, else the recording's setting (off for one made before the memory), else on when a depth network is
    at hand; --reproject sets the memory's guess, --detail its ground detail; --memory on without any depth network is
    one clear error."""
    from worldwalk.app import world_args
    from worldwalk.world.depth import DepthConfig, DepthNet
    from worldwalk.world.memory import MemorySettings

    net = DepthNet(DepthConfig(widths=(4, 6)))
    monkeypatch.setattr(world_args, "_default_depth", lambda device: net)
    ms, depth = world_args.memory_from(parse())
    assert ms == MemorySettings() and depth is net
    assert world_args.memory_from(parse("--memory", "off")) == (None, None)
    assert world_args.memory_from(parse(), {"seed": 1}) == (None, None)  # a recording from before the memory
    assert world_args.memory_from(parse(), {"memory": False}) == (None, None)
    rec = MemorySettings(guess=0.7, feather=3).to_dict()
    assert world_args.memory_from(parse(), {"memory": rec})[0] == MemorySettings(guess=0.7, feather=3)
    old = {k: v for k, v in rec.items() if k != "start_scale"}  # recorded before the start view: replayed without
    assert world_args.memory_from(parse(), {"memory": old})[0] == MemorySettings(guess=0.7, feather=3, start_scale=0)
    assert world_args.memory_from(parse("--memory", "on"), {"memory": False})[0] == MemorySettings()
    # the ground detail: --detail, else the recording's (off for one made before it), else on
    before = {k: v for k, v in rec.items() if k != "detail"}
    assert world_args.memory_from(parse(), {"memory": before})[0] == MemorySettings(guess=0.7, feather=3, detail=0)
    assert world_args.memory_from(parse("--detail", "on"), {"memory": before})[0].detail == 1
    assert world_args.memory_from(parse("--detail", "off"))[0] == MemorySettings(detail=0)
    # the start picture's sky (world/sky.py): --sky, else the recording's (off for one made before it), else on
    before = {k: v for k, v in rec.items() if k != "sky"}
    assert world_args.memory_from(parse(), {"memory": before})[0] == MemorySettings(guess=0.7, feather=3, sky=0)
    assert world_args.memory_from(parse("--sky", "on"), {"memory": before})[0].sky == 1
    assert world_args.memory_from(parse("--sky", "off"))[0] == MemorySettings(sky=0) and MemorySettings().sky == 1
    # the start picture's ground colour (world/ground_colour.py): --ground, else the recording's (off for one made
    # before it), else on
    before = {k: v for k, v in rec.items() if k != "ground"}
    assert world_args.memory_from(parse(), {"memory": before})[0] == MemorySettings(guess=0.7, feather=3, ground=0)
    assert world_args.memory_from(parse("--ground", "on"), {"memory": before})[0].ground == 1
    assert world_args.memory_from(parse("--ground", "off"))[0] == MemorySettings(ground=0)
    assert MemorySettings().ground == 1 and world_args.memory_from(parse(), {"memory": rec})[0].ground == 1
    # a photograph's depth as one sheet (world/sheet.py): --sheet, else the recording's (off for one made before it),
    # else on
    before = {k: v for k, v in rec.items() if k != "sheet"}
    assert world_args.memory_from(parse(), {"memory": before})[0] == MemorySettings(guess=0.7, feather=3, sheet=0)
    assert world_args.memory_from(parse("--sheet", "on"), {"memory": before})[0].sheet == MemorySettings().sheet > 0
    assert world_args.memory_from(parse("--sheet", "off"))[0] == MemorySettings(sheet=0)
    assert world_args.memory_from(parse(), {"memory": rec})[0].sheet == MemorySettings().sheet
    # the start picture's rims (world/rims.py): a recording made before them replays without them
    before = {k: v for k, v in rec.items() if k != "rims"}
    assert world_args.memory_from(parse(), {"memory": before})[0] == MemorySettings(guess=0.7, feather=3, rims=False)
    assert world_args.memory_from(parse(), {"memory": rec})[0].rims is True
    # the guess's sky and ground colours (MemorySettings.guess_prior): a recording made before replays without them
    before = {k: v for k, v in rec.items() if k != "guess_prior"}
    assert world_args.memory_from(parse(), {"memory": before})[0] == MemorySettings(guess=0.7, feather=3,
                                                                                  guess_prior=False)
    assert world_args.memory_from(parse(), {"memory": rec})[0].guess_prior is True
    # the skyline (world/skyline.py; off by default): --skyline, else the recording's (off for one made before it)
    before = {k: v for k, v in rec.items() if k != "skyline"}
    assert world_args.memory_from(parse(), {"memory": before})[0] == MemorySettings(guess=0.7, feather=3)
    assert world_args.memory_from(parse("--skyline", "on"), {"memory": before})[0].skyline
    assert world_args.memory_from(parse("--skyline", "on"))[0] == MemorySettings(skyline=True)
    with_it = MemorySettings(skyline=True).to_dict()
    assert world_args.memory_from(parse(), {"memory": with_it})[0].skyline  # a recording with it replays with it
    assert world_args.memory_from(parse("--skyline", "off"), {"memory": with_it})[0] == MemorySettings()
    assert not MemorySettings().skyline
    # one lift a chunk (its last latent frame): a recording made before it replays lifting every latent frame
    before = {k: v for k, v in rec.items() if k != "lift_last"}
    assert world_args.memory_from(parse(), {"memory": before})[0] == MemorySettings(guess=0.7, feather=3, lift_last=0)
    assert MemorySettings().lift_last == 1 and world_args.memory_from(parse(), {"memory": rec})[0].lift_last == 1
    # the seams' colours (world/seam.py; off by default): a recording made before them replays without, one made
    # with them on replays with them
    before = {k: v for k, v in rec.items() if k != "seam"}
    assert world_args.memory_from(parse(), {"memory": before})[0] == MemorySettings(guess=0.7, feather=3, seam=0)
    on = MemorySettings(seam=1).to_dict()
    assert world_args.memory_from(parse(), {"memory": on})[0].seam == 1 and MemorySettings().seam == 0
    with pytest.raises(ValueError, match="seam 2"):
        MemorySettings(seam=2).validate()
    # lone fragments (MemoryConfig.support): a recording made before the rule replays with fragments growing
    before = {**rec, "config": {k: v for k, v in rec["config"].items() if k not in ("support", "support_ratio")}}
    assert world_args.memory_from(parse(), {"memory": before})[0].config.support == 0
    assert world_args.memory_from(parse(), {"memory": rec})[0].config.support == 5 == MemorySettings().config.support
    # the start picture's enclosed far regions (MemorySettings.open_sky, world/far_field.py): a recording made before
    # they took their surroundings' depth replays with them as predicted
    before = {k: v for k, v in rec.items() if k != "open_sky"}
    assert world_args.memory_from(parse(), {"memory": before})[0].open_sky is False
    assert world_args.memory_from(parse(), {"memory": rec})[0].open_sky is True is MemorySettings().open_sky
    with pytest.raises(ValueError, match="open_sky 1"):
        MemorySettings(open_sky=1).validate()
    # a latent's guess from its own frame alone (MemorySettings.guess_still): a recording made before replays with
    # the guess from all of a latent's frames
    before = {k: v for k, v in rec.items() if k != "guess_still"}
    assert world_args.memory_from(parse(), {"memory": before})[0].guess_still is False
    assert world_args.memory_from(parse(), {"memory": rec})[0].guess_still is True is MemorySettings().guess_still
    with pytest.raises(ValueError, match="guess_still 1"):
        MemorySettings(guess_still=1).validate()
    # the start view's rays that miss its surface at once (MemorySettings.start_miss): a recording made before
    # replays following them all
    before = {k: v for k, v in rec.items() if k != "start_miss"}
    assert world_args.memory_from(parse(), {"memory": before})[0].start_miss == 0
    assert world_args.memory_from(parse(), {"memory": rec})[0].start_miss == 0.3 == MemorySettings().start_miss
    with pytest.raises(ValueError, match="start_miss -1"):
        MemorySettings(start_miss=-1).validate()
    # the start picture's own median (MemorySettings.start_median; off by default): a recording made before it
    # replays without, one made with it with it
    before = {k: v for k, v in rec.items() if k != "start_median"}
    assert world_args.memory_from(parse(), {"memory": before})[0].start_median == 0 == MemorySettings().start_median
    on = MemorySettings(start_median=15).to_dict()
    assert world_args.memory_from(parse(), {"memory": on})[0].start_median == 15
    for bad in (4, 33, -1):
        with pytest.raises(ValueError, match=f"start_median {bad}"):
            MemorySettings(start_median=bad).validate()
    assert world_args.memory_from(parse("--reproject", "0.3"))[0].guess == 0.3
    assert world_args.memory_from(parse("--reproject", "off"))[0].guess is None
    monkeypatch.setattr(world_args, "_default_depth", lambda device: None)
    assert world_args.memory_from(parse()) == (None, None)
    with pytest.raises(ValueError, match=r"^--memory on: no depth network"):
        world_args.memory_from(parse("--memory", "on"))


def test_the_steps_help_names_the_embedded_defaults_own_setting():
    """--steps, --shift and --sampler default to the weights' own sampler (the embedded default's is one step), and
    the help says so instead of a fixed number the embedded default does not run."""
    from worldwalk.world.bundle import DEFAULT_BUNDLE
    p = argparse.ArgumentParser()
    add_world_args(p)
    text = " ".join(p.format_help().split())
    assert "1 for the embedded default" in text and "(default 4)" not in text
    args = parse()
    load_world(args)
    assert args.weights is None and DEFAULT_BUNDLE.exists()
    assert sampler_from(args).steps == 1 == args.default_sampler["steps"]
    assert sampler_from(parse("--steps", "3")).steps == 3  # the flag wins; without weights' own, 3
    assert sampler_from(parse()).steps == 4  # no weights loaded: the sampler's own default
