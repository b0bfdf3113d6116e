"""Input files: checking them, fingerprinting them (the cache key), and cutting them into shards.

A shard is a deterministic share of the inputs taken as one sequence of their reader's units
(bytes of JSONL, rows of Parquet/Arrow, documents of Megatron): shard i of n holds the lines (rows,
documents) that start in [i*T/n, (i+1)*T/n) of the T units, so one big file splits as well as
many small ones.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from fastpack.errors import UserError
from fastpack.readers import reader_for

_SAMPLES = 16
_SAMPLE_BYTES = 1 << 16


@dataclass(frozen=True)
class SourcePart:
    """One input file and the share of it to read, in its reader's units: bytes for JSONL, rows for Parquet/Arrow."""

    path: Path
    start: int = 0
    end: int | None = None

    @property
    def input_bytes(self) -> int:
        """Bytes of input it stands for (for progress)."""
        return reader_for(self.path).input_bytes(self.path, self.start, self.end)


def check_inputs(paths: Sequence[str | os.PathLike]) -> list[Path]:
    if not paths:
        raise UserError("no input files")
    checked = []
    for p in map(Path, paths):
        if not p.exists():
            raise UserError(f"{p}: input file not found")
        if p.is_dir():
            raise UserError(f"{p}: is a folder; pass the token files inside it")
        checked.append(p)
    return checked


def fingerprint(path: Path) -> str:
    """sha256 over the size and 16 evenly spaced 64 KiB samples (head and tail included).

    Cheap on large files and it changes with any edit that moves bytes; not a full-content hash.
    """
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        if size <= _SAMPLES * _SAMPLE_BYTES:
            h.update(f.read())
        else:
            step = (size - _SAMPLE_BYTES) // (_SAMPLES - 1)
            for k in range(_SAMPLES):
                f.seek(k * step)
                h.update(f.read(_SAMPLE_BYTES))
    return "sampled-sha256:" + h.hexdigest()


def describe_sources(paths: Sequence[Path]) -> list[dict]:
    return [{"path": str(p.resolve()), "size": p.stat().st_size, "fingerprint": fingerprint(p)} for p in paths]


def shard_parts(paths: Sequence[Path], num_shards: int, shard_index: int, fields: Sequence[str]) -> list[SourcePart]:
    """The share of `paths` that shard `shard_index` of `num_shards` reads."""
    if num_shards == 1:
        return [SourcePart(p) for p in paths]
    kinds = {reader_for(p) for p in paths}
    if len(kinds) > 1:
        raise UserError(f"sharding needs inputs of one kind, got {' and '.join(sorted(k.kind for k in kinds))}")
    (reader,) = kinds
    sizes = [reader.shard_units(p, fields) for p in paths]
    total = sum(sizes)
    lo, hi = shard_index * total // num_shards, (shard_index + 1) * total // num_shards
    parts, base = [], 0
    for p, size in zip(paths, sizes):
        a, b = max(lo - base, 0), min(hi - base, size)
        if a < b:
            parts.append(SourcePart(p, a, b))
        base += size
    return parts
