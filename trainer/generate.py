"""Sample text from a checkpoint: `python -m trainer.generate --checkpoint PATH --prompt "..."`.

The model shape comes from the checkpoint; the SentencePiece model from `--tokenizer` (a folder or
the .model file), else the tokenizer folder recorded in the checkpoint.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch

from fastpack.errors import UserError, run_main
from fastpack.spmodel import load_sentencepiece
from fastpack.tokenizer_info import MODEL_FILE, TOKENIZER_INFO, load_tokenizer_info

from trainer.checkpoint import load_checkpoint, require_usable
from trainer.guard import nonfinite_tensors
from trainer.model import GPT, ModelArgs, generate


def load_model(checkpoint: str | Path, device: str = "cpu") -> tuple[GPT, dict]:
    """The model of a checkpoint (eval mode) and the checkpoint dict without its large parts."""
    require_usable(checkpoint)
    state = load_checkpoint(checkpoint, mmap=True)  # the optimizer's two thirds of the file are never read
    bad = nonfinite_tensors(state["model"])
    if bad:
        raise UserError(f"{state['path']}: {len(bad)} weight tensor(s) hold NaN or inf (a diverged run, step "
                        f"{state.get('step')}); sample from an earlier checkpoint")
    model = GPT(ModelArgs(**state["model_args"]))
    model.load_state_dict(state["model"])
    model.to(device).eval()
    for key in ("model", "optimizer", "rng"):
        state.pop(key, None)
    return model, state


def _sentencepiece(tokenizer: Optional[Path], state: dict):
    folder = tokenizer if tokenizer is not None else Path(state.get("tokenizer_dir") or ".")
    model_file = folder if folder.suffix == ".model" else folder / MODEL_FILE
    if not model_file.is_file():
        raise UserError(f"{model_file}: tokenizer model not found (pass --tokenizer DIR)")
    return load_sentencepiece(model_file), model_file.parent


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainer.generate", description="Sample text from a trained checkpoint.")
    p.add_argument("--checkpoint", required=True, type=Path, help="a .pt checkpoint, or a folder (its newest valid one)")
    p.add_argument("--prompt", action="append", required=True, help="repeatable")
    p.add_argument("--max-tokens", type=int, default=100)
    p.add_argument("--temperature", type=float, default=0.8, help="0: greedy")
    p.add_argument("--top-k", type=int, default=50, help="0: the whole vocabulary")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tokenizer", type=Path, help="folder with sp_model.model (default: the one recorded in the checkpoint)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.max_tokens < 1 or args.temperature < 0 or args.top_k < 0:
        raise UserError("--max-tokens must be >= 1, --temperature and --top-k >= 0")
    model, state = load_model(args.checkpoint, args.device)
    sp, folder = _sentencepiece(args.tokenizer, state)
    # The token a document starts after in the training data (recorded in the checkpoint), else the tokenizer's eos.
    eos, start = state.get("eos_id"), state.get("prompt_prefix")
    if start is None and (folder / TOKENIZER_INFO).is_file():
        eos = load_tokenizer_info(folder).id_or_none("eos")
        start = [eos] if eos is not None else []
    start = list(start or [])
    generator = torch.Generator().manual_seed(args.seed)
    for prompt in args.prompt:
        ids = sp.encode(prompt)
        out = generate(model, start + ids, max_new_tokens=args.max_tokens, temperature=args.temperature,
                       top_k=args.top_k, eos_id=eos, generator=generator)
        print(sp.decode([i for i in ids + out if i < sp.get_piece_size()]))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
