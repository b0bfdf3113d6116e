"""`tokenizer_info.json`: the ids every later stage needs, written beside the SentencePiece model.

Keys: vocab_size, pad_id, unk_id, bos_id, eos_id (SentencePiece's -1 means "no such token"),
model_type, model_file (relative to the json), training (the trainer's parameters).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from fastpack.atomic import write_json_atomic
from fastpack.errors import UserError
from fastpack.jsonfile import read_json

TOKENIZER_INFO = "tokenizer_info.json"
MODEL_FILE = "sp_model.model"
VOCAB_FILE = "sp_model.vocab"


@dataclass(frozen=True, kw_only=True)
class TokenizerInfo:
    vocab_size: int
    pad_id: int = -1
    unk_id: int = -1
    bos_id: int = -1
    eos_id: int = -1
    model_type: str = "unigram"
    model_file: str = MODEL_FILE
    training: dict[str, Any] = field(default_factory=dict)

    def id_or_none(self, name: str) -> Optional[int]:
        """`pad`, `eos`, ...: the id, or None where SentencePiece says -1 (no such token)."""
        value = getattr(self, f"{name}_id")
        return None if value < 0 else value

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def load_tokenizer_info(path: str | Path) -> TokenizerInfo:
    path = Path(path)
    if path.is_dir():
        path = path / TOKENIZER_INFO
    data = read_json(path, "tokenizer info not found")
    if not isinstance(data, dict) or not isinstance(data.get("vocab_size"), int):
        raise UserError(f"{path}: expected an object with an integer vocab_size")
    known = TokenizerInfo.__dataclass_fields__
    try:
        return TokenizerInfo(**{k: v for k, v in data.items() if k in known})
    except TypeError as exc:
        raise UserError(f"{path}: {exc}") from None


def save_tokenizer_info(info: TokenizerInfo, path: str | Path) -> None:
    write_json_atomic(path, info.to_dict())
