"""NonFiniteGuard in-process: which updates happen, what is counted, when the run stops (the CLI test is in
test_trainer_reliability.py)."""
from __future__ import annotations

import math

import pytest
import torch

from fastpack.errors import UserError
from trainer.guard import NonFiniteGuard


class FakeScaler:
    """GradScaler's surface the guard reads: enabled (fp16) or not, and the loss scale on the device."""

    def __init__(self, enabled: bool, scale: float = 1.0) -> None:
        self.enabled, self.scale = enabled, torch.tensor(scale)

    def is_enabled(self) -> bool:
        return self.enabled

    def _get_scale_async(self) -> torch.Tensor:
        return self.scale


def run_steps(norms, *, fused=True, limit=3, check_every=None, scaler=None):
    """One parameter, gradient 1, AdamW; each step's gradient norm is given. (logs, param values, AdamW steps)."""
    logs: list[str] = []
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=0.1, fused=fused)
    guard = NonFiniteGuard(limit, lr=0.1, ckpt_dir=None, log=logs.append)
    guard._last_good = lambda: "no checkpoint was written"
    scaler = scaler or FakeScaler(enabled=False)
    values = []
    for step, norm in enumerate(norms, start=1):
        param.grad = torch.ones(1)
        with guard.update_unless_nonfinite(optimizer, torch.tensor(norm), scaler) as update:
            if update:
                optimizer.step()
        values.append(param.item())
        if check_every and step % check_every == 0:
            guard.check(step)
    adam_steps = int(optimizer.state[param]["step"]) if optimizer.state else 0
    return logs, values, adam_steps, guard


@pytest.mark.parametrize("fused", [True, False], ids=["fused: skipped on the device", "not fused: skipped on the host"])
def test_no_update_on_a_nonfinite_step(fused):
    nan, inf = math.nan, math.inf
    logs, values, adam_steps, guard = run_steps([1.0, nan, inf, 1.0, nan], fused=fused)
    moved = [b != a for a, b in zip([0.0] + values, values)]
    assert moved == [True, False, False, True, False]
    assert adam_steps == 2 and guard.skipped == 3  # AdamW's step count (bias correction) advanced twice


def test_a_streak_stops_the_run_at_the_next_check_naming_its_steps():
    nan = math.nan
    logs, _, _, guard = run_steps([1.0, nan, 1.0, nan, nan], check_every=5)
    assert guard.check(5) == 2 and logs == [
        "steps 1-5: gradient norm not finite: update skipped on 3 step(s) (2 in a row now; training.max_nonfinite_steps 3)"]
    with pytest.raises(UserError, match=r"not finite for 3 steps in a row \(steps 4-6, no update made\)"):
        run_steps([1.0, 1.0, 1.0, nan, nan, nan], check_every=6)
    # A streak that ended before the check still stops the run: the check names the steps it can.
    with pytest.raises(UserError, match=r"not finite for 3 steps in a row \(between steps 6 and 10"):
        run_steps([1.0, 1.0, 1.0, 1.0, 1.0, nan, nan, nan, 1.0, 1.0], check_every=5)


def test_a_streak_below_the_limit_does_not_stop_and_is_forgotten_once_checked():
    nan = math.nan
    logs, _, _, guard = run_steps([nan, nan, 1.0, nan, nan, 1.0], check_every=3)
    assert guard.skipped == 4 and len(logs) == 2  # two checks, each with skips since the one before


def test_fp16_overflow_while_the_scale_is_above_one_is_not_counted():
    nan = math.nan
    # The scaler skips those steps itself (the optimizer is still called: GradScaler decides).
    logs, _, _, guard = run_steps([nan] * 5, scaler=FakeScaler(enabled=True, scale=2.0**16), check_every=5)
    assert guard.skipped == 5 and int(guard.in_a_row) == 0
    with pytest.raises(UserError, match="3 steps in a row"):
        run_steps([nan] * 3, scaler=FakeScaler(enabled=True, scale=1.0), check_every=3)
