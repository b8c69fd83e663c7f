"""Training on more than one process: torchrun's environment -> torch.distributed, nothing home-made.

    torchrun --standalone --nproc-per-node 2 launch.py train world --dir runs/data --vae runs/vae --out runs/world
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-endpoint HOST:29500 launch.py train world ...   # two machines

Without torchrun (no WORLD_SIZE in the environment) nothing is initialised and a stage runs as one process.

How a stage uses it (train/world.py): each rank reads and VAE-encodes its own shards of the clips (shards r, r + N,
...; rank 0 joins the latents into the run's cache, which all ranks then hold: latents are small). Every rank draws
the same global batch from the same seeded generator (clips, chunk, noise levels, noise) and computes only its own
slice of it (rank r: samples [r·B/N, (r+1)·B/N)); the model is wrapped in DistributedDataParallel, which averages the
gradients, so one step is the step a single process takes on the whole batch (up to float rounding), whatever N is.
The checkpoint (model, optimiser, step) is written by rank 0 only and holds nothing per rank, so a run resumes with
another N. Backend: gloo on the CPU; NCCL for `train world --device
cuda`, where each process takes the GPU of its LOCAL_RANK:

    torchrun --standalone --nproc-per-node 8 launch.py train world --device cuda --bf16 --batch 64 ...
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def check_batch(self, batch: int) -> None:
        """A global batch the processes share evenly, else ValueError (one line)."""
        if self.distributed and batch % self.world:
            raise ValueError(f"--batch {batch}: the global batch must be a multiple of the {self.world} processes")

    def shard(self, n: int) -> slice:
        """This rank's slice of a global batch of n samples (n a multiple of the world size)."""
        k = n // self.world
        return slice(self.rank * k, (self.rank + 1) * k)

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def setup(device: str = "cpu") -> Ranks:
    """The ranks torchrun started (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE), with the process group initialised;
    one process when there is no torchrun. On the CPU each rank takes its share of the machine's cores."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    r = Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")),
              int(os.environ.get("LOCAL_WORLD_SIZE", str(world))))
    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    if backend == "gloo":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // r.local_world))
    return r


def run_stage(train, a, device: str = "cpu") -> int:
    """train(a, ranks) on the ranks torchrun started (or one process), the process group closed after (NCCL when
    the stage trains on CUDA, gloo otherwise). A bad option raises ValueError on every rank alike: rank 0 says it (the
    CLI's one line), the others exit 2 quietly."""
    ranks = setup(device)
    try:
        return train(a, ranks)
    except ValueError:
        if not ranks.main:
            return 2
        raise
    finally:
        ranks.close()

