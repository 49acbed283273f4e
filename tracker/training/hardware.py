"""Where training runs: device, mixed precision, and several GPUs through torch.distributed.

- One process (a plain `pixtrack train ...`): CUDA where present, else the CPU
  (`tracker.device.resolve_device`).
- Several processes: launch with `torchrun --nproc_per_node N -m tracker.cli train ...`;
  torchrun sets WORLD_SIZE, RANK and LOCAL_RANK, and `Runtime.start` joins the process group
  (NCCL on CUDA, gloo on CPU), each rank on GPU LOCAL_RANK. Models are wrapped in
  `DistributedDataParallel`, loaders shard with `DistributedSampler`; rank 0 alone writes
  logs, checkpoints and stage outputs, and the others wait at a barrier.
- Mixed precision: `torch.autocast` on CUDA, bf16 where the GPU supports it (no loss
  scaling needed), else fp16 with a `GradScaler`. On the CPU training runs in float32:
  CPU autocast slows convolutions down more often than it speeds them up.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from tracker.device import resolve_device


@dataclass(frozen=True)
class Runtime:
    """This process's place in a (possibly one-process) training run."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    amp: bool = True
    """Mixed precision on CUDA (ignored on the CPU)."""

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def amp_dtype(self) -> torch.dtype | None:
        """The autocast dtype in force, or None (float32)."""
        if not self.amp or self.device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    @classmethod
    def start(cls, device: str | None = None, amp: bool = True) -> Runtime:
        """Join torchrun's process group when WORLD_SIZE > 1, else a single process on `device`."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls(resolve_device(device), amp=amp)
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available() and device not in ("cpu",):
            torch.cuda.set_device(local_rank)
            target, backend = torch.device("cuda", local_rank), "nccl"
        else:
            target, backend = torch.device("cpu"), "gloo"
        if not dist.is_initialized():
            # Stages that only rank 0 runs (tracking, caching) can take long: a generous timeout.
            dist.init_process_group(backend=backend, timeout=timedelta(hours=3))
        return cls(target, rank=rank, world_size=world_size, amp=amp)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for the forward pass where it helps (CUDA), else nothing."""
        dtype = self.amp_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling, enabled only for fp16 autocast (bf16 and float32 do not need it)."""
        return torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

    def wrap(self, module: nn.Module) -> nn.Module:
        """DistributedDataParallel around `module` when distributed; `module` itself otherwise."""
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        # No buffer broadcast each forward: the only buffers are the frozen backbone's
        # weights (~30 MB, identical on every rank); there is no batch norm to keep in sync.
        # (torch >= 2.13 names this forward_sync_buffers; older versions broadcast_buffers.)
        import inspect

        parameters = inspect.signature(DistributedDataParallel.__init__).parameters
        option = "forward_sync_buffers" if "forward_sync_buffers" in parameters else "broadcast_buffers"
        return DistributedDataParallel(module, device_ids=ids, **{option: False})

    def close(self) -> None:
        """Leave the process group (torchrun runs); nothing for a single process."""
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def average(self, value: torch.Tensor) -> torch.Tensor:
        """Mean of a scalar over the ranks (for logging the same number everywhere)."""
        if not self.distributed:
            return value
        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value / self.world_size

    def loader(self, dataset: Dataset, batch_size: int, *, seed: int, epoch: int, workers: int = 0,
               shuffle: bool = True) -> DataLoader:
        """A loader over this rank's share of `dataset`, reshuffled per (seed, epoch).

        Workers are not persistent, so `dataset.set_epoch` (where it has one) reaches them.
        """
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        if self.distributed:
            sampler = DistributedSampler(dataset, num_replicas=self.world_size, rank=self.rank,
                                         shuffle=shuffle, seed=seed, drop_last=False)
            sampler.set_epoch(epoch)
        elif shuffle:
            generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
            sampler = RandomSampler(dataset, generator=generator)
        else:
            sampler = None
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                          worker_init_fn=_worker_init if workers else None,
                          pin_memory=self.device.type == "cuda", drop_last=False)


def _worker_init(_: int) -> None:
    # Each worker crops with torch: one thread each, or workers x threads oversubscribe the CPU.
    torch.set_num_threads(1)


def unwrap(module: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the module itself)."""
    from torch.nn.parallel import DistributedDataParallel

    return module.module if isinstance(module, DistributedDataParallel) else module
