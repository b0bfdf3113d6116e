"""What a run needs, checked before any process starts: the tokenizer, the model shape, the packed splits."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from fastpack.errors import UserError
from fastpack.tokenizer_info import TokenizerInfo, load_tokenizer_info

from trainer.config import RunConfig
from trainer.data import Shard, check_split, find_split
from trainer.model import ModelArgs, resolve_model_args


@dataclass
class Plan:
    """The checked inputs of a run: tokenizer, model shape, splits (val/test may be absent)."""

    tokenizer: TokenizerInfo
    tokenizer_dir: Path
    model_args: ModelArgs
    train: list[Shard]
    val: Optional[list[Shard]]
    test: Optional[list[Shard]]


def prepare(config: RunConfig, *, root: Path, packed_dir: Path, log: Callable[[str], None] = print) -> Plan:
    """Load the tokenizer info, resolve the model shape, find and check the packed splits (UserError on any problem)."""
    tokenizer_dir = config.paths.resolve(root, "tokenizer_dir")
    try:
        tokenizer = load_tokenizer_info(tokenizer_dir)
    except UserError as exc:
        raise UserError(f"{exc} (paths.tokenizer_dir of root {root})") from None
    splits = {name: find_split(packed_dir, name, required=name == "train") for name in ("train", "val", "test")}
    # The context is the windows' length, from the train split's meta; a length set in the config must match it.
    context_len = config.packing.seq_len or splits["train"][0].seq_len
    args = resolve_model_args(config.model, vocab_size=tokenizer.vocab_size, context_len=context_len)
    for shards in splits.values():
        if shards is not None:
            check_split(shards, seq_len=args.context_len, vocab_size=args.vocab_size, log=log)
    if splits["val"] is None:
        log(f"note: no packed val split in {packed_dir}: no validation loss and no best checkpoint")
    return Plan(tokenizer=tokenizer, tokenizer_dir=tokenizer_dir, model_args=args, **splits)
