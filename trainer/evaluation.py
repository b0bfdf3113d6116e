"""Validation and test loss: a fixed, evenly spaced set of windows per split, scored in one pass.

With overlapping windows (stride < seq_len) the shared prefix is masked by default, so each token is
scored once (sliding-window perplexity); `training.eval_loss_on_overlap` overrides that.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch.utils.data import DataLoader

from trainer import distributed as D
from trainer.config import TrainingConfig
from trainer.data import PackedDataset, Shard, eval_batches
from trainer.model import IGNORE_INDEX
from trainer.precision import Precision


@dataclass
class EvalSet:
    """One split's evaluation batches on this rank; `n_batches` is the busiest rank's count (what the budget waits for)."""

    loader: Optional[DataLoader] = None
    n_batches: int = 0
    sliding: bool = False


def make_eval_set(shards: Optional[list[Shard]], max_batches: Optional[int], t: TrainingConfig,
                  info: D.DistInfo) -> EvalSet:
    if not shards:
        return EvalSet()
    overlap = any(s.stride < s.seq_len for s in shards)
    keep_overlap = t.eval_loss_on_overlap if t.eval_loss_on_overlap is not None else not overlap
    ds = PackedDataset(shards, mask_overlap=not keep_overlap, document_attention=t.document_attention)
    batches = eval_batches(len(ds), t.batch_size, max_batches=max_batches, rank=info.rank, world_size=info.world_size)
    n_batches = len(eval_batches(len(ds), t.batch_size, max_batches=max_batches, rank=0, world_size=info.world_size))
    workers = min(t.num_workers, 1)
    loader = DataLoader(ds, batch_sampler=batches, num_workers=workers, persistent_workers=workers > 0,
                        pin_memory=info.device.type == "cuda", generator=torch.Generator())
    return EvalSet(loader=loader, n_batches=n_batches, sliding=not keep_overlap)


@torch.no_grad()
def evaluate(model: torch.nn.Module, eval_set: EvalSet, precision: Precision, info: D.DistInfo) -> float:
    """Mean loss per scored token over every rank's batches (nan for an empty set)."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=info.device)
    count = 0
    for batch in eval_set.loader or ():
        batch = {k: v.to(info.device, non_blocking=True) for k, v in batch.items()}
        with precision.autocast():
            _, loss = model(batch["input_ids"], batch["labels"], doc_ids=batch.get("doc_ids"),
                            position_ids=batch.get("position_ids"))
        total += loss.double()
        count += int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    model.train(was_training)
    loss_total, n = D.all_reduce_sum([total.item(), count], info)
    return loss_total / n if n else float("nan")


def eval_record(which: str, step: int, loss: float, seconds: float) -> dict[str, Any]:
    from trainer.outputs import perplexity

    return {"step": step, f"{which}_loss": loss, f"{which}_ppl": perplexity(loss), "eval_s": seconds}
