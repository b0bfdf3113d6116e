"""Sample text after each evaluation (samples.txt), from training.sample_prompts, on rank 0 only."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import torch

from fastpack.meta import PackMeta
from fastpack.tokenizer_info import MODEL_FILE

from trainer.config import TrainingConfig
from trainer.model import GPT, generate
from trainer.outputs import append_samples
from trainer.plan import Plan
from trainer.precision import Precision


def load_sentencepiece(plan: Plan, t: TrainingConfig, log: Callable[[str], None]):
    """The SentencePiece processor, or None when there is nothing to sample (no prompts, no model file)."""
    model_file = plan.tokenizer_dir / (plan.tokenizer.model_file or MODEL_FILE)
    if not t.sample_prompts:
        return None
    if not model_file.is_file():
        log(f"note: samples skipped: no tokenizer model at {model_file}")
        return None
    from fastpack.spmodel import load_sentencepiece as load

    return load(model_file)  # a corrupt model: one line naming it


def prompt_prefix(meta: PackMeta) -> list[int]:
    """A prompt starts a document: after bos when the data has one, else after the eos ending the previous one."""
    if meta.bos_id is not None:
        return [meta.bos_id]
    return [meta.eos_id] if meta.eos_id is not None else []


def write_samples(sp, model: GPT, path: Path, step: int, *, t: TrainingConfig, precision: Precision,
                  prefix: list[int], eos_id: Optional[int]) -> None:
    if sp is None:
        return
    generator = torch.Generator().manual_seed(t.seed + step)  # never the training RNG
    samples = []
    for prompt in t.sample_prompts:
        ids = sp.encode(prompt)
        with precision.autocast():
            out = generate(model, prefix + ids, max_new_tokens=t.sample_tokens, temperature=t.temperature,
                           top_k=t.top_k, eos_id=eos_id, generator=generator)
        # Decode prompt and continuation together, so the word boundary between them survives.
        samples.append((prompt, sp.decode([i for i in ids + out if i < sp.get_piece_size()])))
    append_samples(path, step, samples)
