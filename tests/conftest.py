import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests also run from a plain checkout, before `pip install -e .`
    sys.path.insert(0, str(ROOT))

torch.set_num_threads(min(2, os.cpu_count() or 1))


def rel_rms(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative RMS error of a against reference b."""
    a, b = a.double(), b.double()
    return ((a - b).pow(2).mean() / b.pow(2).mean().clamp_min(1e-300)).sqrt().item()


@pytest.fixture
def rms():
    return rel_rms
