"""Open a SentencePiece model once, in the calling process, with a one-line error when it is unreadable.

A corrupt `sp_model.model` must be found before any worker starts: a pool whose initializer
fails respawns its workers forever (tens of thousands of tracebacks, no exit).
"""
from __future__ import annotations

import os
from pathlib import Path

from fastpack.errors import UserError


def load_sentencepiece(path: str | os.PathLike):
    """The SentencePieceProcessor of `path`; a UserError naming the file when it cannot be read."""
    import sentencepiece as spm

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: tokenizer model not found")
    try:
        sp = spm.SentencePieceProcessor(model_file=str(path))
        sp.encode("a")  # a model that parses but cannot encode is as broken
        return sp
    except (RuntimeError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: not a readable SentencePiece model ({reason}); retrain it with "
                        "`python -m fastpack.corpus tokenizer --force`, or restore it") from None
