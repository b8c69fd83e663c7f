"""Stage `bundle`: pack a trained VAE and world model (runs or bundles), with the sampler's settings and optionally the
world memory's depth network (and the start picture's own, --start-depth, its ground-shape network, --ground-shape,
and its object network, --object-mask) and settings, into one world bundle (.safetensors, bfloat16; world/bundle.py).
"""
from __future__ import annotations

import dataclasses
import json

import torch

from worldwalk.world.train.common import load_any_vae, load_trained_world


def cmd_bundle(a) -> int:
    from worldwalk.world.bundle import save_bundle

    vae = load_any_vae(a.vae)
    model = load_trained_world(a.world)
    extra = {"trained_on": "procedural worlds (world/procedural)", "sampler": json.loads(a.sampler)}
    depth = None
    if a.depth:
        from worldwalk.world.train.depth import load_depth_source

        # a depth run, or another bundle's depth network (e.g. a new VAE beside the same depth)
        depth = load_depth_source(a.depth, "--depth")
        if a.depth_median is not None:
            try:
                depth.cfg = dataclasses.replace(depth.cfg, median=a.depth_median).validate()
            except ValueError as e:
                raise ValueError(f"--depth-median {a.depth_median}: {e}") from None
        if a.start_depth:  # the start picture's own network: a run's, or a bundle's start network (else its one)
            start = load_depth_source(a.start_depth, "--start-depth")
            depth.start = start.start if start.start is not None else start
        if a.ground_shape:  # a ground-shape run, or a bundle's
            from worldwalk.world.train.ground_shape import load_ground_shape

            depth.ground_shape = load_ground_shape(a.ground_shape)
        if a.object_mask:  # an object-mask run, or a bundle's
            from worldwalk.world.train.object_mask import load_object_mask

            depth.object_mask = load_object_mask(a.object_mask)
        extra["memory"] = json.loads(a.memory)
    elif a.start_depth or a.ground_shape or a.object_mask:
        flag, value = next((f, v) for f, v in (("--start-depth", a.start_depth), ("--ground-shape", a.ground_shape),
                                               ("--object-mask", a.object_mask)) if v)
        raise ValueError(f"{flag} {value}: needs --depth (the generated frames' network) beside it")
    p = save_bundle(model, vae, a.out, extra=extra, dtype=torch.bfloat16, depth=depth)
    print(f"wrote {p} ({p.stat().st_size / 2**20:.1f} MiB)")
    return 0
