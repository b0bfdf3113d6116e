"""What keeps a training run from writing garbage: non-finite steps, NaN weights, a second writer.

- `NonFiniteGuard`: a step whose global gradient norm is not finite gets no optimizer update;
  `training.max_nonfinite_steps` of them in a row stop the run with one line. The norm is the
  same on every rank (gradients are all-reduced first), so every rank decides alike. Under fp16 a
  non-finite norm while the loss scale is above 1 is the scaler's routine overflow (it lowers the
  scale and skips the step itself) and is not counted.
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
    """Counts consecutive non-finite steps; `allows_update` says whether the optimizer may step."""

    def __init__(self, limit: int, *, lr: float, ckpt_dir: Path, log: Callable[[str], None]) -> None:
        self.limit, self.lr, self.ckpt_dir, self.log = limit, lr, ckpt_dir, log
        self.in_a_row = 0
        self.skipped = 0  # over the whole session

    def allows_update(self, grad_norm: torch.Tensor, *, step: int, scaler=None) -> bool:
        # One host sync per step: the update has to wait for the answer anyway.
        if bool(torch.isfinite(grad_norm)):
            self.in_a_row = 0
            return True
        self.skipped += 1
        if scaler is not None and scaler.is_enabled() and scaler.get_scale() > 1.0:
            return False  # fp16 overflow: the scaler halves its scale (scaler.update) and tries again
        self.in_a_row += 1
        self.log(f"step {step}: gradient norm {float(grad_norm)}: update skipped "
                 f"({self.in_a_row} in a row; training.max_nonfinite_steps {self.limit})")
        if self.in_a_row >= self.limit:
            raise UserError(f"training diverged: gradient norm not finite for {self.in_a_row} steps in a row "
                            f"(steps {step - self.in_a_row + 1}-{step}, no update made); {self._last_good()}; "
                            f"lower training.lr (now {self.lr:g}) or raise training.warmup_steps")
        return False

    def blocks_save(self, step: int) -> bool:
        """In a run of non-finite steps no checkpoint is written: it would replace the last good one."""
        if self.in_a_row:
            self.log(f"step {step}: no checkpoint: {self.in_a_row} non-finite step(s) in a row")
        return self.in_a_row > 0

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
