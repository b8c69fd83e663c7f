"""Compile every Triton kernel, with the configs its launcher picks, for an H100 (sm_90) — no GPU needed.

    python tests/kernels/compile_check.py            # prints registers / spills / shared memory per kernel

The interpreter (TRITON_INTERPRET=1, used by the CPU tests) never runs the real compiler, so errors that only the
compiler sees (tl.dot shape rules, layouts, shared memory over the 227 KiB an sm_90 block may use) would otherwise
surface only on a GPU. This runs Triton's own front end, LLVM and the ptxas bundled with the triton wheel for
target sm_90, then reads the resource usage with the bundled cuobjdump. Exit status 1 on any failure.
Must run without TRITON_INTERPRET (the kernels must be real JIT functions): test_compile.py runs it in a subprocess.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402

from worldwalk.kernels._runtime import lowp_dot  # noqa: E402
from worldwalk.kernels.gdn import clip, prep, stream  # noqa: E402

TARGET = GPUTarget("cuda", 90, 32)
SHARED_LIMIT = 227 * 1024  # bytes of shared memory one sm_90 block may opt into
TRITON_DTYPE = {torch.float32: "fp32", torch.bfloat16: "bf16"}


def signature(fn, pointers: dict[str, str], constexprs: dict, floats=()) -> dict:
    sig = {}
    for name in fn.arg_names:
        if name in constexprs:
            sig[name] = "constexpr"
        elif name in pointers:
            sig[name] = pointers[name]
        else:
            sig[name] = "fp32" if name in floats else "i32"
    return sig


def resources(cubin: bytes) -> str:
    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    if not tool.exists():
        return "(no cuobjdump)"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([str(tool), "-res-usage", f.name], capture_output=True, text=True).stdout
    regs = re.search(r"REG:(\d+)", out)
    stack = re.search(r"STACK:(\d+)", out)
    return f"regs {regs.group(1) if regs else '?'}, spill/stack {stack.group(1) if stack else '?'} B"


def check(label: str, fn, pointers: dict[str, str], config: dict, floats=()) -> bool:
    cfg = dict(config)
    opts = {k: cfg.pop(k) for k in ("num_warps", "num_stages") if k in cfg}
    try:
        src = triton.compiler.ASTSource(fn=fn, signature=signature(fn, pointers, cfg, floats), constexprs=cfg)
        k = triton.compile(src, target=TARGET, options=opts)
    except Exception as e:  # noqa: BLE001 - report every failure, keep going
        print(f"FAIL {label}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        return False
    shared = k.metadata.shared
    ptx = k.asm.get("ptx", "")
    mma = "wgmma" if "wgmma" in ptx else ("mma" if "mma.sync" in ptx else "no mma")
    ok = shared <= SHARED_LIMIT
    print(f"{'ok  ' if ok else 'FAIL'} {label}: {resources(k.asm['cubin'])}, shared {shared} B, {mma}"
          f"{'' if ok else ' (over the sm_90 limit)'}")
    return ok


def main() -> int:
    ok = True
    D = 112
    for dt in (torch.float32, torch.bfloat16):
        t = TRITON_DTYPE[dt]
        io = lambda *names, t=t: {n: f"*{t}" for n in names}  # noqa: E731
        f32 = lambda *names: {n: "*fp32" for n in names}  # noqa: E731
        for dv in (D, 1):
            base = stream.stream_config(dt, D, dv, 20, torch.device("cpu"))
            for bv in sorted({base["BV"], 16}):
                for rev in (False, True):
                    cfg = {**base, "BV": bv, "REVERSE": rev, "HAS_H0": True}
                    ok &= check(f"stream {t} Dv={dv} BV={bv} {'rev' if rev else 'fwd'}", stream._gdn_stream_kernel,
                                {**io("q", "k", "v", "o"), **f32("beta", "decay", "h0", "ht")}, cfg)
            cc = clip.clip_config(dt, D, dv)
            ok &= check(f"clip transition {t} Dv={dv}", clip._gdn_clip_transition_kernel,
                        {**io("k", "x"), **f32("beta", "mb")}, {**cc["transition"], "LOWP": lowp_dot(dt)})
            for rev in (False, True):
                ok &= check(f"clip scan {t} Dv={dv} {'rev' if rev else 'fwd'}", clip._gdn_clip_scan_kernel,
                            f32("mb", "decay", "h0", "states", "ht"), {**cc["scan"], "REVERSE": rev, "HAS_H0": True})
            ok &= check(f"clip output {t} Dv={dv}", clip._gdn_clip_output_kernel,
                        {**io("q", "o"), **f32("states")}, cc["output"])
        ok &= check(f"qk_norm_relu {t} C=2240", prep._qk_norm_relu_kernel, {**io("x"), **f32("w", "y")},
                    {**prep.norm_config(2240), "RELU": True}, floats=("eps", "scale"))
        g = prep.gates_config(dt, 2240, 20)
        ok &= check(f"gates token {t} C=2240 H=20", prep._gates_token_kernel,
                    {**io("x", "wb", "wg"), **f32("bb", "beta", "gsum")},
                    {**g, "HAS_BB": True, "LOWP": lowp_dot(dt)})
    ok &= check("gates frame", prep._gates_frame_kernel, f32("gsum", "bg", "A_log", "dt_bias", "decay"),
                dict(BN=32, BH=32, HAS_BG=True, num_warps=1))
    print("all kernels compile for sm_90" if ok else "some kernels failed")
    return 0 if ok else 1


if __name__ == "__main__":
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        sys.exit("compile_check.py: unset TRITON_INTERPRET (the kernels must be compiled, not interpreted)")
    sys.exit(main())
