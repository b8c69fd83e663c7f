"""Frame-wise Gated DeltaNet kernels, each Triton file beside its PyTorch twin.

    naive.py       reference scans (gdn_recurrent, gdn_chunked)        — PyTorch, every device
    stream.py      streaming kernel: state + a chunk of frames           — Triton (twin: gdn_recurrent)
    clip.py        whole-clip kernel: transitions ∥, scan, outputs ∥     — Triton (twin: gdn_chunked)
    prep_naive.py  q/k RMSNorm+ReLU+key scale, β/γ gates                 — PyTorch
    prep.py        the same, fused                                       — Triton

Nothing here imports triton at package import; the Triton modules do when loaded (kernels/__init__.py loads them
lazily). Call the ops through `kernels` (the dispatcher) unless you need a specific implementation.
"""
