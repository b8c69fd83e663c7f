"""One import namespace: worldwalk's rooms live under `worldwalk`, so nothing of ours shadows another distribution.

A top-level package named `kernels` once shadowed Hugging Face's `kernels`, which transformers >= 5.25 imports: from
the repository root (where `launch.py` and pytest run) diffusers' LTX-2 VAE and the Gemma-2 text encoder could not
import. These tests run from the repository root, in fresh processes, as a user would.
"""
import os
import re
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("app", "world", "controls", "kernels")


def run_from_root(code: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_no_import_of_a_bare_room_name():
    """The issue's grep: no module imports `app`, `world`, `controls` or `kernels` as a top-level package."""
    pat = re.compile(r"^\s*(from|import) (%s)\b" % "|".join(ROOMS), re.M)
    hits = []
    for p in ROOT.rglob("*.py"):
        if ".git" in p.parts or "site-packages" in p.parts:
            continue
        for m in pat.finditer(p.read_text(encoding="utf-8")):
            line = p.read_text(encoding="utf-8")[:m.start()].count("\n") + 1
            hits.append(f"{p.relative_to(ROOT)}:{line}: {m.group(0).strip()}")
    assert not hits, "\n".join(hits)
    assert not any((ROOT / r).exists() for r in ROOMS), "a room folder is back at the repository root"


def test_hugging_face_stack_and_our_kernels_in_one_process_from_the_root():
    """transformers with Hugging Face's `kernels`, diffusers' LTX-2 VAE, a Gemma-2 config and our GDN scan import in
    one process started in the repository root; then the diffusers oracle runs in that same process."""
    code = (
        "import sys\n"
        "assert sys.path[0] == '', sys.path[:2]\n"  # the repository root comes first, as for launch.py
        "import kernels\n"
        "assert 'site-packages' in kernels.__file__ and hasattr(kernels, 'CUDAProperties'), kernels.__file__\n"
        "import transformers\n"
        "from transformers import Gemma2Config\n"
        "cfg = Gemma2Config(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,\n"
        "                   num_attention_heads=2, num_key_value_heads=1, head_dim=8)\n"
        "assert cfg.model_type == 'gemma2'\n"
        "from diffusers import AutoencoderKLLTX2Video\n"
        "import torch\n"
        "from worldwalk.kernels import frame_gdn_scan\n"
        "q = torch.rand(1, 1, 2, 3, 4)\n"
        "out, state = frame_gdn_scan(q, q, q, torch.rand(1, 1, 2, 3), torch.rand(1, 1, 2))\n"
        "assert out.shape == (1, 1, 2, 3, 4) and bool(torch.isfinite(out).all())\n"
        "import pytest\n"
        "rc = pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/world/test_oracle.py'])\n"
        "print('oracle exit', int(rc))\n"
        "sys.exit(int(rc))\n"
    )
    r = run_from_root(code)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert "oracle exit 0" in r.stdout and " passed" in r.stdout, r.stdout[-2000:]


def test_installed_top_level_names(tmp_path):
    """A plain (non-editable) install adds exactly `worldwalk` and `launch` at top level, ships the assets inside the
    package, and every module imports from there, away from the checkout."""
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target",
                        str(target), str(ROOT)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    top = sorted(p.name for p in target.iterdir() if not p.name.endswith((".dist-info", ".egg-info"))
                 and p.name not in ("bin", "__pycache__"))
    assert top == ["launch.py", "worldwalk"], top
    code = (
        "import importlib, pkgutil, sys\n"
        "import worldwalk\n"
        f"assert worldwalk.__file__.startswith({str(target)!r}), worldwalk.__file__\n"
        "a = worldwalk.assets_dir()\n"
        f"assert str(a).startswith({str(target)!r}), a\n"
        "assert (a / 'default_world.safetensors').stat().st_size > 1_000_000\n"
        "assert sorted(p.name for p in (a / 'scenes').glob('*.png'))[:2] == ['world_1.depth.png', 'world_1.png']\n"
        "assert (a / 'trajectories' / 'orbit.json').is_file()\n"
        "from worldwalk.world.bundle import DEFAULT_BUNDLE, load_bundle\n"
        "model, vae, extra = load_bundle(DEFAULT_BUNDLE)\n"
        "from worldwalk.controls.builtin import load_builtin\n"
        "load_builtin('orbit')\n"
        "from worldwalk.app.web.scenes import load_scenes\n"
        "assert [s.name for s in load_scenes()][:1] == ['World 1']\n"
        "mods = [m.name for m in pkgutil.walk_packages(worldwalk.__path__, 'worldwalk.')]\n"
        "for m in mods:\n"
        "    if not m.endswith('__main__'):\n"
        "        importlib.import_module(m)\n"
        "print('modules', len(mods))\n"
    )
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "PYTHONPATH": str(target)}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert int(r.stdout.split("modules")[1]) > 40, r.stdout
    r = subprocess.run([sys.executable, str(target / "launch.py"), "info", "--preset", "test"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "test" in r.stdout, r.stderr[-2000:]
