"""The Triton kernels compile for an H100 (sm_90) with their launchers' configs — checked on any machine.

The interpreter used by the CPU tests never runs Triton's compiler; compile_check.py does (front end, LLVM, the
ptxas bundled with triton), in a subprocess without TRITON_INTERPRET.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

triton = pytest.importorskip("triton")

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_every_kernel_compiles_for_sm90():
    if not (Path(triton.__file__).parent / "backends" / "nvidia").is_dir():
        pytest.skip("this triton has no NVIDIA backend")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run([sys.executable, str(HERE / "compile_check.py")], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all kernels compile for sm_90" in r.stdout
