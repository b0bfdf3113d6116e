"""Time budgets: parse "11h30m" / "90m" / "3600", and decide when to stop with time left to save.

Kaggle kills a session at its limit with no signal a handler could catch, so the loop asks
`should_stop()` before every step: now + (next step [+ an eval]) + a checkpoint + the final
evaluation + a margin must still fit before the deadline. Every estimate is measured on this
run (the slowest recent step, the last checkpoint write, the last eval) and padded by SAFETY.

Test-only: `FASTPACK_FAKE_CLOCK=TICK[:LAUNCH]` in the environment makes the command line's clock
(`clock_from_env`) a `TickClock`, for tests that run the trainer in subprocesses (torchrun ranks)
where no clock can be passed in. Unset (always, outside tests) it costs one environment lookup.
"""
from __future__ import annotations

import os
import re
import time
from collections import deque
from typing import Callable, Optional

from fastpack.errors import UserError

SAFETY = 1.5
FAKE_CLOCK_ENV = "FASTPACK_FAKE_CLOCK"
FAKE_EPOCH = 1_000_000_000.0  # where a TickClock starts: far from any real time.time()
_PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")


def parse_duration(text: str | float | int | None, what: str = "--time-budget") -> Optional[float]:
    """Seconds from `3600`, `"3600"`, `"45s"`, `"90m"`, `"11h30m"`, `"1.5h"`; None stays None."""
    if text is None:
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        raw = str(text).strip().lower().replace(" ", "")
        try:
            seconds = float(raw)
        except ValueError:
            parts = _PART.findall(raw)
            if not raw or "".join(n + u for n, u in parts) != raw or len({u for _, u in parts}) != len(parts):
                raise UserError(f"{what}: expected seconds or a duration like 11h30m, 90m, 45s; got {text!r}") from None
            seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds <= 0:
        raise UserError(f"{what}: must be positive, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Budget:
    """Deadline bookkeeping (wall clock, `time.time()`, so a relaunched process shares the deadline).

    `clock` is injectable: tests drive the budget with a fake clock, so they assert decisions, not timings.
    """

    def __init__(
        self, deadline: Optional[float], *, total: Optional[float] = None, micro_steps: int = 1, checkpoint_guess: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.deadline, self.clock = deadline, clock
        self.micro_steps = micro_steps
        total = total if total is not None else (deadline - clock() if deadline else None)
        # A margin for what no estimate covers (closing files, the process exit, a busy machine).
        self.margin = min(60.0, max(1.0, 0.02 * total)) if total else 0.0
        self.steps: deque[float] = deque(maxlen=8)
        self.checkpoint_s = checkpoint_guess
        self.eval_batch_s: Optional[float] = None
        self.eval_extra_s = 2.0  # a guess for the plot and the samples until one is measured

    def record_step(self, seconds: float) -> None:
        self.steps.append(seconds)

    def record_checkpoint(self, seconds: float) -> None:
        self.checkpoint_s = seconds

    def record_eval(self, seconds: float, batches: int, extra_seconds: float) -> None:
        """An eval of `batches` batches took `seconds`; what came with it (loss plot, samples) `extra_seconds`."""
        if batches:
            self.eval_batch_s = seconds / batches
        self.eval_extra_s = extra_seconds

    def eval_estimate(self, batches: int, *, extras: bool = True) -> float:
        if not batches:
            return 0.0
        if self.eval_batch_s is not None:
            per_batch = self.eval_batch_s
        else:
            # Before any eval: a forward pass is about a third of a training micro-step.
            per_batch = max(self.steps) / self.micro_steps / 3 if self.steps else 0.0
        return per_batch * batches + (self.eval_extra_s if extras else 0.0)

    def remaining(self, now: Optional[float] = None) -> float:
        return float("inf") if self.deadline is None else self.deadline - (now or self.clock())

    def should_stop(self, *, val_batches: int, test_batches: int) -> bool:
        """True when one more step would not leave time for a checkpoint and the evaluations still owed.

        The validation (with its plot and samples) runs once more either way: right after the next
        step when one is due, else at the end; the test split is evaluated at the end.
        """
        if self.deadline is None:
            return False
        step = max(self.steps) if self.steps else 0.0
        need = step + self.checkpoint_s + self.eval_estimate(val_batches) + self.eval_estimate(test_batches, extras=False)
        return SAFETY * need + self.margin > self.remaining()


class TickClock:
    """Test-only time that advances `tick` seconds per reading and nothing else: the budget runs out
    after the same steps on a loaded machine as on an idle one."""

    def __init__(self, tick: float, start: float = FAKE_EPOCH) -> None:
        self.tick, self.now = tick, start

    def __call__(self) -> float:
        now, self.now = self.now, self.now + self.tick
        return now


def clock_from_env() -> Callable[[], float]:
    """`time.time`, or a TickClock when FASTPACK_FAKE_CLOCK=TICK[:LAUNCH] is set (tests only).

    The ranks a relaunch started begin LAUNCH seconds after the launching process, as if torchrun had
    taken that long: a budget counted from the launching process's start then shows as such.
    """
    spec = os.environ.get(FAKE_CLOCK_ENV)
    if not spec:
        return time.time
    from trainer.distributed import RELAUNCHED_ENV

    tick, _, launch = spec.partition(":")
    try:
        tick, launch = float(tick), float(launch or 0)
    except ValueError:
        raise UserError(f"{FAKE_CLOCK_ENV}: expected TICK[:LAUNCH] in seconds, got {spec!r}") from None
    return TickClock(tick, FAKE_EPOCH + (launch if os.environ.get(RELAUNCHED_ENV) else 0.0))
