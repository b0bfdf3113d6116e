"""A prepared project (a root holding config/): its tokenizer's ids as packing defaults, its tokenized
splits, and packing one with the config's parameters. Shared by `python -m fastpack` and the Kaggle runner.

Import-light: numba loads only when `pack_split` runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from fastpack.config import SPLITS, Config
from fastpack.tokenizer_info import TOKENIZER_INFO, load_tokenizer_info

TOKENS_SUFFIX = "_tokens.jsonl"


def with_tokenizer_defaults(config: Config, root: Path, required: bool = False) -> tuple[Config, dict, Path]:
    """packing.eos_id, pad_id and vocab_size taken from tokenizer_info.json where the config leaves them unset.

    Returns (config, the values filled in, the info file). Without the file: unchanged, or an error when `required`.
    """
    info_path = config.paths.resolve(root, "tokenizer_dir") / TOKENIZER_INFO
    if not info_path.is_file() and not required:
        return config, {}, info_path
    info = load_tokenizer_info(info_path)
    pk = config.packing
    filled = {k: v for k, v in (("eos_id", info.id_or_none("eos")), ("pad_id", info.id_or_none("pad")),
                                ("vocab_size", info.vocab_size)) if getattr(pk, k) is None and v is not None}
    return config.replace("packing", **filled), filled, info_path


def tokenized_splits(config: Config, root: Path) -> list[tuple[str, Path]]:
    """(split, its {split}_tokens.jsonl) under the tokenized dir: train, val, test first, then any other."""
    found = [(p.name[: -len(TOKENS_SUFFIX)], p)
             for p in config.paths.resolve(root, "tokenized_dir").glob(f"*{TOKENS_SUFFIX}")]
    return sorted(found, key=lambda sp: (SPLITS.index(sp[0]) if sp[0] in SPLITS else len(SPLITS), sp[0]))


def pack_split(config: Config, inputs: Sequence[str | Path], output: str | Path, *, format: str | None = None,
               num_shards: int = 1, shard_index: int = 0, show_progress: bool = False, force: bool = False):
    """`pack_sequences` with the packing section's parameters; the resolved config goes into the meta."""
    from fastpack.pack import pack_sequences

    pk = config.packing
    return pack_sequences(
        inputs, output, seq_len=pk.window_len, stride=pk.window_stride, mode=pk.mode, eos_id=pk.eos_id,
        add_eos=pk.add_eos, bos_id=pk.bos_id, pad_id=pk.pad_id, pad_last=pk.pad_last, field=pk.field,
        vocab_size=pk.vocab_size, format=format, dtype=pk.dtype, on_bad_line=pk.on_bad_line,
        num_shards=num_shards, shard_index=shard_index, show_progress=show_progress, force=force,
        config=config.to_dict(),
    )
