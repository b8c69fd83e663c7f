"""Grain anchored to the world: the noise the VAE decoder draws its fine texture from (issue 25).

A decoder that is a fixed function of latents smooth over a 16-px cell can only fake detail by repeating one pattern in
every cell (a lattice); given noise it draws a random grain instead (benchmarks/RESULTS.md, "A noise input"). Noise
drawn afresh for every frame boils at a standing pose, and noise fixed to the screen slides over the world as the
camera turns. This noise is fixed to viewing directions in the world: a white-noise table on the faces of a cube
around the camera, looked up by each pixel's ray direction. Turning moves it with the world exactly; walking leaves
it where it is on the screen, which is what the far field does, and near content the decoder draws is lifted into
the world memory with its grain after its chunk (the memory's render replaces the decoded frame wherever it sees).

    field = GrainField(seed)
    g = field.sample(c2w (N, 4, 4), intrinsics (4,) or (N, 4) [fx, fy, cx, cy], size (W, H))  # -> (N, 1, H, W)

Each face is an (n+1) x (n+1) lattice of N(0, 1) values, n chosen from the focal length so that one lattice cell is
about one pixel at the image centre; a ray reads its four lattice neighbours bilinearly and divides by the root of
the squared weights, so every pixel has unit variance whatever its offset in the cell (a plain bilinear read would
halve it between lattice points and beat with the pixel grid). The table depends only on (seed, n): nothing of it is
walk state.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from worldwalk.kernels.grain import lookup


class GrainField:
    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        self._tables: dict[int, torch.Tensor] = {}

    def table(self, n: int) -> torch.Tensor:
        """The (6 * (n+1)**2,) lattice values for faces of n cells a side (float32, CPU, cached)."""
        t = self._tables.get(n)
        if t is None:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + n)
            t = torch.randn(6 * (n + 1) ** 2, generator=g)
            if len(self._tables) > 8:  # a few sizes at most in one process (one per decoder stage and focal length)
                self._tables.clear()
            self._tables[n] = t
        return t

    def sample(self, c2w, intrinsics, size: tuple[int, int], device=None) -> torch.Tensor:
        """c2w (N, 4, 4) camera-to-world (OpenCV: x right, y down, z forward); intrinsics (4,) or (N, 4) in pixels of
        size = (W, H) -> grain (N, 1, H, W) float32, N(0, 1) at every pixel, fixed to the world's directions."""
        W, H = int(size[0]), int(size[1])
        c2w = torch.as_tensor(np.asarray(c2w, dtype=np.float32)).reshape(-1, 4, 4)
        intr = torch.as_tensor(np.asarray(intrinsics, dtype=np.float32)).reshape(-1, 4).expand(c2w.shape[0], 4)
        # one lattice cell about one pixel at the image centre: a face spans tan = -1..1, a pixel 1 / f of it
        n = max(2, int(math.ceil(2.0 * float(intr[:, :2].min()))))
        out = lookup(self.table(n), n, c2w[:, :3, :3].contiguous(), intr.contiguous(), H, W)[:, None]
        return out if device is None else out.to(device)

    def stages(self, c2w, intrinsics, size: tuple[int, int], factors: list[int], device=None) -> list[torch.Tensor]:
        """The grain at each of the decoder's stage resolutions: size / factor for each factor (intrinsics scaled
        alike) -> [(N, 1, H / factor, W / factor)]."""
        W, H = int(size[0]), int(size[1])
        intr = np.asarray(intrinsics, dtype=np.float64)
        out = []
        for k in factors:
            out.append(self.sample(c2w, intr / k, (W // k, H // k), device))
        return out
