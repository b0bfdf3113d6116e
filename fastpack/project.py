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
    tokenizer = load_tokenizer_info(info_path)
    pk = config.packing
    filled = {k: v for k, v in (("eos_id", tokenizer.id_or_none("eos")), ("pad_id", tokenizer.id_or_none("pad")),
                                ("vocab_size", tokenizer.vocab_size)) if getattr(pk, k) is None and v is not None}
    return config.replace("packing", **filled), filled, info_path


def tokenized_splits(config: Config, root: Path) -> list[tuple[str, Path]]:
    """(split, its {split}_tokens.jsonl) under the tokenized dir: train, val, test first, then any other."""
    found = [(p.name[: -len(TOKENS_SUFFIX)], p)
             for p in config.paths.resolve(root, "tokenized_dir").glob(f"*{TOKENS_SUFFIX}")]
    return sorted(found, key=lambda sp: (SPLITS.index(sp[0]) if sp[0] in SPLITS else len(SPLITS), sp[0]))


def with_pack_flags(config: Config, **flags) -> Config:
    """Command-line flags over the packing section (None: not given). `--seq-len` without `--stride`
    also resets the stride, so the windows are disjoint (the spec defaults it to seq_len)."""
    values = {k: v for k, v in flags.items() if v is not None}
    if "seq_len" in values and "stride" not in values:
        values["stride"] = None
    data = config.to_dict()
    data["packing"].update(values)
    return type(config).from_dict(data, source="arguments")


def pack_split(config: Config, inputs: Sequence[str | Path], output: str | Path, *, format: str | None = None,
               num_shards: int = 1, shard_index: int = 0, show_progress: bool = False, force: bool = False):
    """`pack_sequences` with the packing section's parameters; the resolved config goes into the meta."""
    from fastpack.pack import pack_sequences
    from fastpack.spec import PackSpec

    spec = PackSpec.from_config(config.packing, num_shards=num_shards, shard_index=shard_index)
    return pack_sequences(inputs, output, spec, format=format, show_progress=show_progress, force=force,
                          config=config.to_dict())
