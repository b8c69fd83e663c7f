"""Parameter counts per preset and the time of one chunk forward of a preset, on the CPU or a GPU.

    python benchmarks/model_forward.py --preset tiny --frames 3 --repeat 10
    python benchmarks/model_forward.py --preset sana-wm-1600m --device cuda     # the release's size on a GPU

Times the chunk-causal forward of one chunk (latent frames at offset 4, i.e. the second chunk, with camera and
Plücker branches on) in float32 and bfloat16, after warm-up. Prints a markdown table for benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for a run without an install

from worldwalk.app.runtime import keep_freed_memory  # noqa: E402
from worldwalk.world.model import WorldModel, count_parameters  # noqa: E402
from worldwalk.world.presets import PRESETS, get_preset  # noqa: E402


def chunk_inputs(cfg, frames: int, device="cpu"):
    H, W = cfg.latent_hw
    B = 1
    x = torch.randn(B, cfg.latent_channels, frames, H, W)
    ts = torch.full((B, frames), 727.0)
    c2w = torch.eye(4).reshape(1, 1, 16).repeat(B, frames, 1)
    intr = torch.tensor([W * 0.87, W * 0.87, (W - 1) / 2, (H - 1) / 2]).repeat(B, frames, 1)
    cam = torch.cat([c2w, intr], -1)
    pl = torch.randn(B, cfg.plucker_channels, frames, H, W)
    return tuple(t.to(device) for t in (x, ts, cam, pl))


def time_forward(model, args_, repeat: int) -> list[float]:
    times = []
    cuda = args_[0].device.type == "cuda"
    with torch.inference_mode():
        for _ in range(2):
            model(*args_, mode="chunk_causal", frame_offset=4)
        for _ in range(repeat):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(*args_, mode="chunk_causal", frame_offset=4)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return times


def main():
    keep_freed_memory()  # as the app does (worldwalk/app/runtime.py)
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (then also the peak GPU memory)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    gpu = f", GPU {torch.cuda.get_device_name(a.device)}" if a.device.startswith("cuda") else ""
    print(f"device: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}{gpu}")
    print("\n| preset | parameters |\n|---|---:|")
    for name in PRESETS:
        print(f"| {name} | {count_parameters(name):,} |")
    cfg = get_preset(a.preset)
    H, W = cfg.latent_hw
    torch.manual_seed(0)
    with torch.device(a.device):  # built where it runs (the release's size takes minutes to build on a CPU)
        model = WorldModel(cfg).init_weights().eval()
    inp = chunk_inputs(cfg, a.frames, a.device)
    raw = a.frames * cfg.temporal_stride
    print(f"\n{a.preset}: one chunk = {a.frames} latent frames x {H}x{W} tokens = {a.frames * H * W} tokens, "
          f"{raw} raw frames = {raw / cfg.fps * 1000:.0f} ms of video at {cfg.fps} fps")
    print("\n| dtype | median ms / forward | min ms | 5 forwards (4 steps + cache write) / video time | "
          "2 forwards (1 step + cache write) | 1 forward (one per chunk) | peak GPU memory |\n"
          "|---|---:|---:|---:|---:|---:|---:|")
    video_ms = raw / cfg.fps * 1000
    for dt in (torch.float32, torch.bfloat16):
        if a.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(a.device)
        t = time_forward(model.to(dt), inp, a.repeat)
        med = statistics.median(t) * 1000
        peak = f"{torch.cuda.max_memory_allocated(a.device) / 2**30:.1f} GiB" if a.device.startswith("cuda") else ""
        print(f"| {str(dt).replace('torch.', '')} | {med:.1f} | {min(t) * 1000:.1f} | {5 * med / video_ms:.2f}x | "
              f"{2 * med / video_ms:.2f}x | {med / video_ms:.2f}x | {peak} |")


if __name__ == "__main__":
    main()
