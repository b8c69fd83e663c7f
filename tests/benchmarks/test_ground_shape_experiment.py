"""scripts/ground_shape_experiment.py runs end to end at toy size: its data holds the exact terrain's ratio to the
level ground where the picture shows open ground; training starts from the level ground and moves off it."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ground_shape_experiment.py"


def run(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return r


def test_data_then_training(tmp_path):
    data, net = tmp_path / "d.npz", tmp_path / "net.pt"
    run("data", "--first", "600000", "--count", "3", "--out", str(data))
    d = np.load(data)
    assert d["imgs"].shape == (3, 256, 256, 3) and d["ratio"].shape == d["mask"].shape == (3, 64, 64)
    assert d["mask"].mean() > 0.2 and not d["mask"][:, :32].any()  # open ground, below the horizon only
    ratio = d["ratio"].astype(np.float32)
    assert np.all(ratio[~d["mask"]] == 0) and np.abs(ratio[d["mask"]]).max() > 0.01  # terrain: not the level plane
    out = run("train", "--data", str(data), "--val", str(data), "--steps", "3", "--batch", "2", "--lr", "1e-2",
              "--out", str(net)).stdout
    plane, ours = map(float, re.search(r"level ground (\d\.\d+), network (\d\.\d+)", out).groups())
    assert 0 < plane < 1 and ours != plane and np.isfinite(ours)
    state = torch.load(net)
    assert state["head.weight"].abs().sum() > 0  # the zero-initialised head has moved


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    for args, message in ((["train", "--data", "no/such.npz", "--val", "no/such.npz", "--out", "x.pt"],
                           "--data no/such.npz: no such file"),
                          (["walk", "--net", "no/such.pt"], "--net no/such.pt: no such file"),
                          (["data", "--first", "0", "--count", "0", "--out", str(tmp_path / "d.npz")],
                           "argument --count: '0' is below 1")):
        r = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / "d.npz").exists()
