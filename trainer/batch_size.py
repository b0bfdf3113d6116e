"""A micro-batch that fits the GPU (`training.auto_batch_size`), and an out-of-memory error that names the fix.

With auto_batch_size the configured `batch_size x grad_accum` windows per optimizer step stay fixed
(so do the tokens per step, the schedule and the loss): the largest micro-batch that divides them
and trains one step without exceeding the device's memory is taken, and grad_accum becomes the
quotient. Each candidate is tried for real (forward + backward at the run's preset, precision and
window length), largest first; the trial's peak memory plus the AdamW moments still to come must
stay under `HEADROOM` of the device.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from fastpack.errors import UserError

HEADROOM = 0.9  # of the device's memory: allocator fragmentation and the DataLoader's pinned buffers live in the rest
ADAM_BYTES_PER_PARAM = 8  # two fp32 moments, allocated at the first optimizer step (after the trial)


def micro_batch_candidates(windows_per_step: int) -> list[int]:
    """Divisors of the windows per step, largest first: each keeps the tokens per step exact."""
    return [b for b in range(windows_per_step, 0, -1) if windows_per_step % b == 0]


def pick_micro_batch(windows_per_step: int, fits: Callable[[int], bool]) -> tuple[int, int]:
    """(micro-batch, grad_accum) with micro-batch x grad_accum == windows_per_step, the largest micro-batch that fits."""
    for batch in micro_batch_candidates(windows_per_step):
        if fits(batch):
            return batch, windows_per_step // batch
    raise UserError("out of GPU memory even at training.batch_size 1: choose a smaller model.preset, "
                    "or set training.activation_checkpointing=true, or use a GPU with more memory")


def trial_fits(run_trial: Callable[[int], int], batch: int, *, limit_bytes: float) -> bool:
    """Whether `run_trial(batch)` (a training step; returns its peak bytes) stays under the limit without an OOM."""
    try:
        peak = run_trial(batch)
    except torch.cuda.OutOfMemoryError:
        return False
    return peak <= limit_bytes


def cuda_trial(model: torch.nn.Module, *, seq_len: int, device: torch.device, precision, n_params: int,
               doc_attention: bool) -> Callable[[int], int]:
    """A function running one forward + backward of `batch` windows; returns the peak bytes it needed (AdamW included)."""

    def run(batch: int) -> int:
        cpu_rng, cuda_rng = torch.get_rng_state(), torch.cuda.get_rng_state(device)  # dropout must not see the trial
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        try:
            ids = torch.zeros(batch, seq_len, dtype=torch.long, device=device)  # values do not change the memory
            doc_ids = torch.zeros_like(ids) if doc_attention else None
            with precision.autocast():
                _, loss = model(ids, ids, doc_ids=doc_ids)
            loss.backward()
            return torch.cuda.max_memory_allocated(device) + ADAM_BYTES_PER_PARAM * n_params
        finally:
            model.zero_grad(set_to_none=True)
            torch.set_rng_state(cpu_rng)
            torch.cuda.set_rng_state(cuda_rng, device)
            torch.cuda.empty_cache()

    return run


def oom_message(*, batch_size: int, seq_len: int, preset: str, precision: str, auto: bool) -> str:
    """The one line an out-of-memory error becomes."""
    fixes = ["set training.activation_checkpointing=true"] if auto else [
        "set training.auto_batch_size=true", "or lower training.batch_size (raise training.grad_accum to keep the tokens per step)",
        "or set training.activation_checkpointing=true"]
    return (f"out of GPU memory training micro-batches of {batch_size} x {seq_len} tokens (model.preset {preset}, "
            f"{precision}): {', '.join(fixes)}, or choose a smaller model.preset")


def describe(batch: int, accum: int, before: tuple[int, int], device_name: Optional[str]) -> str:
    return (f"auto_batch_size: micro-batch {batch} x grad_accum {accum} on {device_name} "
            f"(configured {before[0]} x {before[1]}; same windows per step)")
