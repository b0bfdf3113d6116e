"""Train the GPT on packed windows: `run_training(...)` for callers, `python -m trainer.train_lm` for people.

    python -m trainer.train_lm --config ROOT/config/training_config.json \\
        [--packed-dir DIR] [--output-dir DIR] [--preset tiny|small|base] [--max-steps N] \\
        [--resume auto|PATH|none] [--time-budget 11h30m] [--checkpoint-minutes M] \\
        [--nproc auto|N] [--precision auto|fp32|fp16|bf16] [--compile] [--show-progress] \\
        [--set section.key=value ...]

This module resolves what the caller asked for into a config and `RunOptions`, then runs the loop
(`trainer.loop.Trainer`) here, or under torchrun in several processes (`trainer.launch`), which
hand the children one launch file.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from fastpack.errors import run_main

from trainer import distributed as D
from trainer.budget import clock_from_env, parse_duration
from trainer.config import RunConfig, config_root, find_config, load_config
from trainer.launch import RunOptions, read_launch_file, relaunch
from trainer.optim import param_groups as _param_groups  # noqa: F401  (the name tests and callers import)
from trainer.outputs import SUMMARY
from trainer.summary import fmt


def run_training(
    config: RunConfig,
    *,
    root: str | Path,
    packed_dir: str | Path | None = None,
    output_dir: str | Path | None = None,
    resume: str | Path | None = "auto",
    max_steps: Optional[int] = None,
    stop_at_step: Optional[int] = None,
    time_budget: str | float | None = None,
    deadline: Optional[float] = None,
    budget_total: Optional[float] = None,
    show_progress: bool = False,
    nproc: int | str = "auto",
    device: Optional[str] = None,
    log: Callable[[str], None] = print,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Train (or continue training) and return the summary (also written to output_dir/summary.json).

    `resume`: "auto" (the newest valid checkpoint in output_dir/checkpoints, else a fresh start),
    a checkpoint path (or a folder holding checkpoints), or None/"none" (fresh; an error when the
    output folder already holds checkpoints). `max_steps` sets training.max_steps, the schedule's
    length; `stop_at_step` stops early (with a checkpoint) without changing the schedule.
    `time_budget` ("11h30m" or seconds; default training.time_budget) counts from this call;
    `deadline` (a `time.time()` value; `budget_total` its length, for the safety margin) overrides
    it. `nproc` > 1 (or "auto" with several GPUs) relaunches under torchrun and returns the summary
    its rank 0 wrote. `device`: "cpu", "cuda", "cuda:1" (default: cuda when available). `log`
    receives every line rank 0 would print. `clock` (default `time.time`) is what the time budget
    reads in this process (tests pass a fake one; torchrun ranks read `budget.clock_from_env()`).
    """
    from trainer.loop import Trainer
    from trainer.precision import require_torch

    require_torch()
    root = Path(root).resolve()
    if max_steps is not None:
        config = config.replace("training", max_steps=max_steps)
    if deadline is None:
        budget_total = parse_duration(time_budget if time_budget is not None else config.training.time_budget,
                                      "--time-budget" if time_budget is not None else "training.time_budget")
        deadline = clock() + budget_total if budget_total is not None else None
    options = RunOptions(
        root=root,
        packed_dir=Path(packed_dir) if packed_dir is not None else config.paths.resolve(root, "packed_dir"),
        output_dir=Path(output_dir) if output_dir is not None else config.paths.resolve(root, "output_dir"),
        resume=None if resume in (None, "", "none") else str(resume),
        stop_at_step=stop_at_step, deadline=deadline, budget_total=budget_total,
        show_progress=show_progress, device=device,
    )
    n = D.resolve_nproc(nproc, device)
    if n > 1 and not D.under_torchrun():
        return relaunch(config, options, n, summary_name=SUMMARY, log=log)
    return Trainer(config, options, log=log, clock=clock).run()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainer.train_lm", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, help="ROOT/config/training_config.json (default: ./config/training_config.json)")
    p.add_argument("--root", type=Path, help="the data root paths are relative to (default: the folder holding config/)")
    p.add_argument("--packed-dir", type=Path, help="folder of packed splits (default: paths.packed_dir)")
    p.add_argument("--output-dir", type=Path, help="checkpoints, metrics, samples (default: paths.output_dir)")
    p.add_argument("--preset", choices=["tiny", "small", "base"], help="model size (model.preset)")
    p.add_argument("--max-steps", type=int, help="training.max_steps: the schedule's length")
    p.add_argument("--stop-at-step", type=int, help="stop after this step (with a checkpoint); the schedule is unchanged")
    p.add_argument("--resume", default="auto", help="auto (newest valid checkpoint of the output dir), PATH, or none")
    p.add_argument("--time-budget", help="stop cleanly before this much time: 11h30m, 90m, or seconds")
    p.add_argument("--checkpoint-minutes", type=float, help="training.checkpoint_minutes")
    p.add_argument("--nproc", default="auto", help="processes (GPUs): auto = one per visible GPU; >1 relaunches under torchrun")
    p.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16"], help="training.precision")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--show-progress", action="store_true", help="a progress bar with loss, lr, tokens/s and ETA")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config field (repeatable)")
    p.add_argument("--launch", type=Path, help=argparse.SUPPRESS)  # the torchrun children: config + options in one file
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.launch is not None:
        from trainer.loop import Trainer

        config, options = read_launch_file(args.launch)
        Trainer(config, options, clock=clock_from_env()).run()
        return 0  # the launching process prints the result line
    config_path = args.config or find_config(".")
    config = load_config(config_path, args.overrides)
    config = config.replace("model", preset=args.preset)
    config = config.replace("training", precision=args.precision, compile=True if args.compile else None,
                            checkpoint_minutes=args.checkpoint_minutes)
    root = args.root or (config_root(config_path) if config_path else Path.cwd())
    summary = run_training(
        config, root=root, packed_dir=args.packed_dir, output_dir=args.output_dir, resume=args.resume,
        max_steps=args.max_steps, stop_at_step=args.stop_at_step, time_budget=args.time_budget,
        show_progress=args.show_progress, nproc=args.nproc, device=args.device, clock=clock_from_env(),
    )
    if int(os.environ.get("RANK", "0")) == 0 and not os.environ.get(D.RELAUNCHED_ENV):  # the parent prints it
        print(f"{summary['stop_reason']}: step {summary['step']}, val ppl {fmt(summary['val_ppl'], 2)}, "
              f"test ppl {fmt(summary['test_ppl'], 2)} -> {summary['output_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
