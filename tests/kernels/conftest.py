"""Kernel tests run the Triton kernels on a CPU through Triton's interpreter.

TRITON_INTERPRET is read when a @triton.jit function is defined, i.e. when a kernel module is first imported; the
`kernels` package itself never imports triton, and this conftest is loaded before any test module of this folder, so
setting the variable here (process-wide) is early enough. On a CUDA machine it is left alone: the same tests then run
the compiled kernels on the GPU. Other test folders are unaffected: on CPU tensors `kernels` picks the PyTorch
reference unless WORLDWALK_KERNELS=triton.
"""
import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture
def device():
    return DEVICE


@pytest.fixture
def poison(monkeypatch):
    """Launchers fill every buffer they allocate (outputs, states, scratch) with NaN before the kernels run."""
    monkeypatch.setenv("WORLDWALK_KERNELS_POISON", "1")


@pytest.fixture
def force_triton(monkeypatch):
    """Route the dispatcher to Triton whatever the device (the interpreter on a CPU)."""
    pytest.importorskip("triton")
    monkeypatch.setenv("WORLDWALK_KERNELS", "triton")
