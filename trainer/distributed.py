"""DDP plumbing: read torchrun's environment, pick the backend, relaunch under torchrun.

Under torchrun (WORLD_SIZE > 1) every rank trains on its own share of each global batch; NCCL on
GPUs, gloo on CPU. Only rank 0 logs and writes. `--nproc auto` (or N > 1) from a plain process
relaunches `python -m trainer.train_lm` under `torch.distributed.run` and waits for it.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
import torch.distributed as dist

from fastpack.errors import UserError

RELAUNCHED_ENV = "FASTPACK_TORCHRUN_CHILD"  # set in the processes `relaunch` starts


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    in_group: bool = False  # joined a process group (torchrun), even of one process
    # A gloo group for the small host-side messages (stop/save flags, counts, RNG states): on CPU
    # tensors, so they never wait for the GPU's queued work as an NCCL collective read back would.
    control: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """DDP and collectives on: several processes, or torchrun with one (its NCCL/DDP path, as a check)."""
        return self.world_size > 1 or self.in_group


def under_torchrun() -> bool:
    """Launched by torchrun (it sets TORCHELASTIC_RUN_ID, even for one process), or any launcher of several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or "TORCHELASTIC_RUN_ID" in os.environ


def resolve_nproc(nproc: int | str | None, device: Optional[str] = None) -> int:
    """`auto`: one process per visible GPU (1 on CPU); an integer as given."""
    if nproc in (None, "", "auto"):
        if device == "cpu" or not torch.cuda.is_available():
            return 1
        return max(1, torch.cuda.device_count())
    try:
        value = int(nproc)
    except (TypeError, ValueError):
        raise UserError(f"--nproc expects auto or a positive integer, got {nproc!r}") from None
    if value < 1:
        raise UserError(f"--nproc expects auto or a positive integer, got {nproc!r}")
    if value > 1 and device != "cpu" and torch.cuda.is_available() and value > torch.cuda.device_count():
        raise UserError(f"--nproc {value}: only {torch.cuda.device_count()} GPU(s) visible")
    return value


def pick_device(requested: Optional[str], local_rank: int = 0) -> torch.device:
    if requested in (None, "", "auto"):
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {requested}: no CUDA GPU visible")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


def init_distributed(requested_device: Optional[str] = None) -> DistInfo:
    """Join the process group when launched by torchrun; a single process otherwise."""
    if not under_torchrun():
        return DistInfo(device=pick_device(requested_device))
    rank, local_rank, world = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
    device = pick_device(requested_device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", device_id=device if device.type == "cuda" else None)
    # Made on CPU runs too (where the default group is gloo already), so the tests take the path GPUs take.
    control = dist.new_group(backend="gloo")
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world, device=device, in_group=True, control=control)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def close_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: Sequence[float], info: DistInfo) -> list[float]:
    """Sum host numbers over ranks (float64, over the gloo control group); identity in one process."""
    if not info.enabled:
        return list(values)
    t = torch.tensor(list(values), dtype=torch.float64)
    dist.all_reduce(t, group=info.control)
    return t.tolist()


def all_reduce_max(values: Sequence[int], info: DistInfo) -> list[int]:
    if not info.enabled:
        return list(values)
    t = torch.tensor(list(values), dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=info.control)
    return [int(v) for v in t.tolist()]


def broadcast_object(obj, info: DistInfo):
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, group=info.control)
    return box[0]


def gather_objects(obj, info: DistInfo) -> list:
    """Every rank's `obj`, in rank order (on every rank)."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj, group=info.control)
    return out


def torchrun_command(nproc: int, module: str, args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m", module, *args]


def relaunch(nproc: int, module: str, args: Sequence[str]) -> int:
    """Run `python -m module args` under torchrun with `nproc` processes; its exit code."""
    env = dict(os.environ)
    env[RELAUNCHED_ENV] = "1"
    # The children import this project from the same checkout, installed or not.
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if "OMP_NUM_THREADS" not in env:
        # torchrun's default is 1 thread per process; on CPU share the cores instead.
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    return subprocess.run(torchrun_command(nproc, module, args), env=env).returncode
