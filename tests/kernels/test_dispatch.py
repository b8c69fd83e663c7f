"""The dispatcher: one call per op on every device, an environment switch, and no hard dependency on triton."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from worldwalk import kernels
from worldwalk.kernels import backend, frame_gdn_scan, gdn_method
from worldwalk.kernels.gdn.naive import gdn_recurrent

ROOT = Path(__file__).resolve().parents[2]


def make(B=1, H=2, T=3, S=5, Dk=8, Dv=8, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    q = torch.rand(B, H, T, S, Dk, generator=g, dtype=dtype)
    k = torch.rand(B, H, T, S, Dk, generator=g, dtype=dtype) * (Dk * S) ** -0.5
    v = torch.randn(B, H, T, S, Dv, generator=g, dtype=dtype)
    return q, k, v, torch.rand(B, H, T, S, generator=g, dtype=dtype), 0.5 + 0.5 * torch.rand(B, H, T, generator=g,
                                                                                             dtype=dtype)


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    e = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=e, capture_output=True, text=True, timeout=120)


def test_backend_choice(monkeypatch):
    monkeypatch.delenv("WORLDWALK_KERNELS", raising=False)
    assert backend("cpu") == "reference"
    assert backend("cuda") == ("triton" if kernels.triton_available() else "reference")
    for choice in ("reference", "chunked"):
        monkeypatch.setenv("WORLDWALK_KERNELS", choice)
        assert backend("cuda") == choice
    monkeypatch.setenv("WORLDWALK_KERNELS", "Bogus")
    with pytest.raises(ValueError, match="WORLDWALK_KERNELS"):
        backend()


def test_gdn_method(monkeypatch):
    monkeypatch.delenv("WORLDWALK_GDN", raising=False)
    assert gdn_method(3) == "stream" and gdn_method(121) == "clip"
    monkeypatch.setenv("WORLDWALK_GDN", "clip")
    assert gdn_method(3) == "clip"
    monkeypatch.setenv("WORLDWALK_GDN", "nope")
    with pytest.raises(ValueError, match="WORLDWALK_GDN"):
        gdn_method(3)


@pytest.mark.parametrize("method", ["stream", "clip"])
def test_forced_triton_runs_and_matches(method, force_triton, poison, monkeypatch, rms, device):
    monkeypatch.setenv("WORLDWALK_GDN", method)
    q, k, v, beta, decay = (t.to(device) for t in make())
    out, s = frame_gdn_scan(q, k, v, beta, decay)
    ref, s_ref = gdn_recurrent(q, k, v, beta, decay)
    assert rms(out, ref) <= 1e-5 and rms(s, s_ref) <= 1e-5
    # float64 is not a Triton dtype: the reference answers, bit for bit
    q, k, v, beta, decay = (t.to(device) for t in make(dtype=torch.float64))
    out, _ = frame_gdn_scan(q, k, v, beta, decay)
    assert torch.equal(out, gdn_recurrent(q, k, v, beta, decay)[0])


def test_import_does_not_import_triton():
    r = run_python("import sys; from worldwalk import kernels; assert 'triton' not in sys.modules, 'triton imported'; print('ok')")
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_works_without_triton():
    code = (
        "import sys; sys.modules['triton'] = None\n"  # `import triton` now raises ImportError
        "import torch\nfrom worldwalk import kernels\n"
        "assert not kernels.triton_available() and kernels.backend('cuda') == 'reference'\n"
        "q = torch.rand(1, 1, 2, 3, 4)\n"
        "out, s = kernels.frame_gdn_scan(q, q, q, torch.rand(1, 1, 2, 3), torch.rand(1, 1, 2))\n"
        "import os; os.environ['WORLDWALK_KERNELS'] = 'triton'\n"
        "try:\n    kernels.backend()\nexcept RuntimeError as e:\n    print('refused:', e)\n"
    )
    r = run_python(code)
    assert r.returncode == 0 and "refused: WORLDWALK_KERNELS=triton but triton does not import" in r.stdout, r.stderr


def test_forced_triton_on_cpu_without_interpreter_says_so():
    pytest.importorskip("triton")
    code = (
        "import torch\nfrom worldwalk import kernels\n"
        "q = torch.rand(1, 1, 2, 3, 4)\n"
        "try:\n    kernels.frame_gdn_scan(q, q, q, torch.rand(1, 1, 2, 3), torch.rand(1, 1, 2))\n"
        "except RuntimeError as e:\n    print('refused:', e)\n"
    )
    r = run_python(code, WORLDWALK_KERNELS="triton", TRITON_INTERPRET="0")
    assert r.returncode == 0 and "refused:" in r.stdout and "TRITON_INTERPRET" in r.stdout, r.stderr


def test_ops_that_autograd_records_run_the_reference():
    """Training: the Triton twins have no backward, so an op whose inputs need a gradient runs the PyTorch reference
    (here forced Triton without its interpreter would refuse, so reaching the reference shows the routing)."""
    pytest.importorskip("triton")
    code = (
        "import torch\nfrom worldwalk import kernels\nfrom worldwalk.kernels.gdn.naive import gdn_recurrent\n"
        "g = torch.Generator().manual_seed(0)\n"
        "q, k, v = (torch.rand(1, 1, 2, 3, 4, generator=g).requires_grad_() for _ in range(3))\n"
        "b, d = torch.rand(1, 1, 2, 3, generator=g), torch.rand(1, 1, 2, generator=g)\n"
        "out, _ = kernels.frame_gdn_scan(q, k, v, b, d)\n"
        "out.sum().backward()\n"
        "ref, _ = gdn_recurrent(q, k, v, b, d)\n"
        "print('same', torch.equal(out, ref), bool(q.grad.abs().sum() > 0))\n"
        "with torch.no_grad():\n"
        "    try:\n        kernels.frame_gdn_scan(q, k, v, b, d)\n"
        "    except RuntimeError:\n        print('no grad: triton')\n"
    )
    r = run_python(code, WORLDWALK_KERNELS="triton", TRITON_INTERPRET="0")
    assert r.returncode == 0 and "same True True" in r.stdout and "no grad: triton" in r.stdout, r.stderr


def test_interpreter_works_when_triton_was_imported_first():
    """Another test folder may import triton before tests/kernels/conftest.py sets TRITON_INTERPRET=1: triton's own
    @jit helpers (tl.zeros, tl.sum, ...) then stay compiled-mode functions, so our kernels must not call them."""
    pytest.importorskip("triton")
    code = (
        "import os, torch, triton, triton.language\n"  # triton first, interpreter off
        "os.environ['TRITON_INTERPRET'] = '1'\n"
        "from worldwalk.kernels.gdn import clip, prep, stream\n"
        "q = torch.rand(1, 2, 3, 5, 8); beta = torch.rand(1, 2, 3, 5); decay = torch.rand(1, 2, 3)\n"
        "for rev in (False, True):\n"
        "    stream.gdn_stream(q, q, q, beta, decay, reverse=rev); clip.gdn_clip(q, q, q, beta, decay, reverse=rev)\n"
        "prep.qk_norm_relu(torch.rand(2, 5, 16), torch.rand(16), 1e-6)\n"
        "w, b = torch.rand(3, 16), torch.rand(3)\n"
        "prep.gdn_gates(torch.rand(1, 2, 5, 16), w, b, w, b, b, b)\n"
        "print('ok')\n"
    )
    r = run_python(code, TRITON_INTERPRET="0")
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]
