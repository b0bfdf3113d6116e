"""Resuming: which checkpoint to start from, and putting back what it holds besides the weights.

What a checkpoint holds besides the model, optimizer and scaler is `Progress` and every rank's RNG
state; the loop writes both (`Trainer.save`) and these functions read them back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from fastpack.errors import UserError

from trainer import checkpoint as ckpt
from trainer.distributed import DistInfo


@dataclass
class Progress:
    """Where training stands: what a checkpoint restores besides the model, optimizer, scaler and RNG."""

    step: int = 0
    data_position: int = 0  # samples of the endless training stream consumed (all ranks together)
    tokens_seen: int = 0
    best_val: float = math.inf
    train_seconds: float = 0.0  # time in training steps, summed over sessions
    last_val: Optional[float] = None
    last_loss: Optional[float] = None


def resolve_resume(resume: str | Path | None, ckpt_dir: Path, log: Callable[[str], None] = lambda message: None,
                   *, move_bad: bool = True) -> Optional[Path]:
    """The checkpoint to start from, or None for a fresh start; says what it skipped and why.

    Checkpoints of this output folder that fail their check are moved aside (`NAME.pt.unreadable`)
    so a fresh save never overwrites them unseen.
    """
    if resume is not None and str(resume) != "auto":
        return _explicit(Path(resume), log)
    choice = choose_checkpoint_logged([ckpt_dir], log, move_bad_in=ckpt_dir if move_bad else None)
    if resume is None:
        if choice.path is not None:
            raise UserError(
                f"{ckpt_dir} already holds checkpoints (newest: {choice.path.name}); "
                "pass --resume auto to continue them, or choose another --output-dir"
            )
        return None
    if choice.path is None:
        why = "none of them is valid" if choice.skipped else "there are none"
        log(f"resume auto: starting fresh: {why} in {ckpt_dir}")
    return choice.path


def choose_checkpoint_logged(dirs: list[Path], log: Callable[[str], None], *,
                             move_bad_in: Optional[Path] = None) -> ckpt.Choice:
    """`checkpoint.choose_checkpoint`, saying which checkpoints it skipped and why."""
    choice = ckpt.choose_checkpoint(dirs, move_bad_in=move_bad_in)
    for path, problem in choice.skipped:
        log(f"resume: skipped {path}: {problem}")
    return choice


def _explicit(path: Path, log: Callable[[str], None]) -> Path:
    """--resume PATH: a checkpoint file (checked against its marker when it has one) or a folder of them."""
    if path.is_dir():
        choice = choose_checkpoint_logged([path], log)
        if choice.path is None:
            raise UserError(f"{path}: no valid checkpoint in this folder")
        return choice.path
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    ckpt.require_usable(path)
    return path


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's RNG streams (dropout), saved per rank."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_progress(state: dict[str, Any], progress: Progress) -> None:
    progress.step, progress.data_position = int(state["step"]), int(state["data_position"])
    progress.tokens_seen = int(state["tokens_seen"])
    progress.train_seconds = float(state.get("train_seconds", 0.0))
    progress.best_val = state["best_val_loss"] if state.get("best_val_loss") is not None else math.inf
    progress.last_val = state.get("val_loss")


def restore_rng(state: dict[str, Any], info: DistInfo, *, seed: int, step: int, log: Callable[[str], None]) -> None:
    rng = state.get("rng") or []
    if len(rng) == info.world_size:
        # Exact continuation: this rank's dropout stream goes on where it stopped.
        torch.set_rng_state(rng[info.rank]["torch"])
        if info.device.type == "cuda" and "cuda" in rng[info.rank]:
            torch.cuda.set_rng_state(rng[info.rank]["cuda"], info.device)
    else:
        log(f"note: world size {len(rng)} -> {info.world_size}: dropout RNG reseeded, data order kept")
        torch.manual_seed(seed + 7919 * step + info.rank)

