"""What keeps a training run from writing garbage: non-finite steps, NaN weights, a second writer.

- `NonFiniteGuard`: a step whose global gradient norm is not finite gets no optimizer update;
  `training.max_nonfinite_steps` of them in a row stop the run with one line, at the next logging
  step or checkpoint (the counts live on the device). The norm is the same on every rank (gradients
  are all-reduced first), so every rank decides alike. Under fp16 a non-finite norm while the loss
  scale is above 1 is the scaler's routine overflow (it lowers the scale and skips the step itself)
  and is not counted.
- `require_finite_weights`: checked before every checkpoint, so NaN weights never replace a good one.
- `training_lock` and `reclaim_training_temps`: one run per output folder; temps of killed runs removed.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterator, Optional

import torch

from fastpack.atomic import Reclaimed, reclaim_temps
from fastpack.errors import UserError
from fastpack.locks import lock_path_for, output_lock


class NonFiniteGuard:
    """Skips the update of a step whose gradient norm is not finite, and stops a run of too many in a row.

    The decision stays on the device: the fused AdamW takes a `found_inf` flag (the protocol GradScaler
    uses) and makes no update where it is set, so a step waits for nothing. The counts are read on the
    host only by `check`, which the loop calls where it syncs anyway (logging steps, checkpoints).
    """

    def __init__(self, limit: int, *, lr: float, ckpt_dir: Path, log: Callable[[str], None],
                 device: torch.device = torch.device("cpu")) -> None:
        self.limit, self.lr, self.ckpt_dir, self.log = limit, lr, ckpt_dir, log
        zero = torch.zeros((), dtype=torch.int64, device=device)
        self.in_a_row, self.longest, self.skipped_total = zero.clone(), zero.clone(), zero.clone()
        self.checked = (0, 0)  # the step and skipped_total at the last check

    @contextlib.contextmanager
    def update_unless_nonfinite(self, optimizer: torch.optim.Optimizer, grad_norm: torch.Tensor, scaler) -> Iterator[bool]:
        """Around `scaler.step(optimizer)`, which is called where it yields True: no update where grad_norm is
        not finite (a fused optimizer skips it on the device; another one is not called)."""
        bad = ~torch.isfinite(grad_norm)
        if scaler.is_enabled():
            # fp16: the scaler skips the step itself (its own found_inf) and halves its scale; while the scale is
            # above 1 that is its routine overflow, not divergence, and neither counts nor breaks a streak.
            # (_get_scale_async: the scale as a device tensor; get_scale() would wait for the device.)
            counted = bad & (scaler._get_scale_async() <= 1.0)
            self.in_a_row = torch.where(counted, self.in_a_row + 1, torch.where(bad, self.in_a_row, 0))
        else:
            self.in_a_row = torch.where(bad, self.in_a_row + 1, 0)
        self.longest = torch.maximum(self.longest, self.in_a_row)
        self.skipped_total += bad
        fused = bool(optimizer.defaults.get("fused")) and not scaler.is_enabled()
        if fused:
            optimizer.grad_scale, optimizer.found_inf = None, bad.float()
        try:
            yield fused or scaler.is_enabled() or not bool(bad)  # a non-fused optimizer: decided on the host
        finally:
            if fused:
                del optimizer.grad_scale, optimizer.found_inf

    def check(self, step: int) -> int:
        """At a sync point: says what was skipped since the last check, stops the run where a streak reached
        the limit; the non-finite steps in a row now."""
        in_a_row, longest, skipped = (int(v) for v in torch.stack([self.in_a_row, self.longest, self.skipped_total]).tolist())
        last_step, last_skipped = self.checked
        if skipped > last_skipped:
            span = f"step {step}" if last_step + 1 == step else f"steps {last_step + 1}-{step}"
            self.log(f"{span}: gradient norm not finite: update skipped on {skipped - last_skipped} step(s) "
                     f"({in_a_row} in a row now; training.max_nonfinite_steps {self.limit})")
        if longest >= self.limit:
            steps = (f"steps {step - in_a_row + 1}-{step}" if in_a_row >= self.limit
                     else f"between steps {last_step + 1} and {step}")
            raise UserError(f"training diverged: gradient norm not finite for {longest} steps in a row ({steps}, "
                            f"no update made); {self._last_good()}; lower training.lr (now {self.lr:g}) or raise "
                            f"training.warmup_steps")
        self.longest.copy_(self.in_a_row)
        self.checked = (step, skipped)
        return in_a_row

    @property
    def skipped(self) -> int:
        """Updates skipped this session (fp16 overflows included)."""
        return int(self.skipped_total)

    def blocks_save(self, step: int) -> bool:
        """In a run of non-finite steps no checkpoint is written: it would replace the last good one."""
        in_a_row = self.check(step)
        if in_a_row:
            self.log(f"step {step}: no checkpoint: {in_a_row} non-finite step(s) in a row")
        return in_a_row > 0

    def _last_good(self) -> str:
        from trainer.checkpoint import read_marker

        marker = read_marker(self.ckpt_dir / "last.pt")
        if marker is None:
            return "no checkpoint was written"
        return f"the last checkpoint ({self.ckpt_dir / 'last.pt'}, step {marker['step']}) is from before it"


def nonfinite_tensors(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity."""
    return [name for name, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def require_finite_weights(model: torch.nn.Module, step: int) -> None:
    """Refuse to checkpoint NaN/inf weights (they would replace `last.pt`, the good one)."""
    bad = nonfinite_tensors(model.state_dict())
    if bad:
        raise UserError(f"not saving step {step}: {len(bad)} weight tensor(s) hold NaN or inf ({', '.join(bad[:3])}"
                        f"{', ...' if len(bad) > 3 else ''}); the previous checkpoint is kept; lower training.lr")


@contextlib.contextmanager
def training_lock(output_dir: Path, is_main: bool) -> Iterator[None]:
    """One training per output folder (rank 0 holds it); the second stops naming the first one's pid."""
    if not is_main:
        yield
        return
    created = not output_dir.exists()
    try:
        with output_lock(lock_path_for(output_dir, "train_lm"), f"{output_dir} (training output)"):
            yield
    finally:
        if created:  # a run that stopped before writing anything leaves no empty folder
            with contextlib.suppress(OSError):
                output_dir.rmdir()


def reclaim_training_temps(output_dir: Path, ckpt_dir: Path, log: Callable[[str], None]) -> Optional[Reclaimed]:
    """Temps of killed runs in the output and checkpoint folders (`.step-*.pt.tmp-*`, ...), removed and said."""
    reclaimed = reclaim_temps(output_dir, ckpt_dir)
    if reclaimed:
        log(reclaimed.describe())
    return reclaimed
