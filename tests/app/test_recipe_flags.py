"""Every `launch.py train` command of the recipe (scripts/train_default_world.sh) parses: a renamed or mistyped flag
fails here, not two hours into a training run."""
import shlex
from pathlib import Path

import pytest

from worldwalk.app.cli import build_parser

RECIPE = Path(__file__).resolve().parents[2] / "scripts" / "train_default_world.sh"


def recipe_commands() -> list[tuple[str, list[str]]]:
    text = RECIPE.read_text().replace("\\\n", " ")
    subst = {"$OUT": "runs/recipe", "$SAMPLER": "{}", "$WORLD": "runs/recipe/roll", "$RECYCLE": "cpu"}
    out = []
    for line in text.splitlines():
        if not line.lstrip().startswith("stage "):  # (a stage inside the if block is indented)
            continue
        for k, v in subst.items():
            line = line.replace(k, v)
        words = shlex.split(line.strip())
        assert words[3] == "train", f"recipe stage {words[1]}: expected `stage NAME DONE_FILE train ...`"
        out.append((words[1], words[3:]))
    return out


def test_the_recipe_has_its_stages():
    commands = dict(recipe_commands())
    assert {"data", "vae", "world", "depth", "ground-data", "ground-shape", "bundle-depth"} <= set(commands)
    assert "--ground-shape" in commands["bundle-depth"] and "--depth" in commands["bundle-depth"]


@pytest.mark.parametrize("name,argv", recipe_commands())
def test_every_recipe_command_parses(name, argv):
    args = build_parser().parse_args(argv)
    assert callable(args.func), name
