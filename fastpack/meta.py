"""`{name}.meta.json`: what a packed split is, how it was made, and the cache key of a re-pack.

    {
      "format_version": 1, "fastpack_version": "0.1.0", "name": "train",
      "files": {"npy": "train.npy", "pt": "train.pt" | null},     # beside the meta
      "docs": "train.docs.npz",    # the boundaries sidecar: document segments per window (boundaries.py)
      "shape": [n_windows, seq_len], "dtype": "int32" | "uint16",
      "seq_len": 1024, "stride": 1024, "mode": "concat" | "document" | "bestfit",
      "eos_id": 3 | null, "bos_id": null, "pad_id": 0 | null, "vocab_size": 32000 | null,
      "counts": {"documents", "empty_documents", "tokens_in", "eos_added", "bos_added",
                 "windows", "tokens_out", "padded", "dropped", "skipped_lines",
                 "documents_split", "documents_truncated"},
      "sources": [{"path", "size", "fingerprint"}],
      "params": {...},             # every parameter that shapes the output: with sources, the cache key
      "shard": {"index": i, "count": n} | null,
      "config": {...} | null       # the resolved training_config, for reproducing the run
    }

The meta is written last: an array without its meta is an interrupted pack.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fastpack.errors import UserError
from fastpack.jsonfile import read_json

FORMAT_VERSION = 1


def meta_path_for(array_path: str | Path) -> Path:
    """`train.npy` / `train.pt` / `train` -> `train.meta.json`."""
    path = Path(array_path)
    stem = path.name[: -len(path.suffix)] if path.suffix in (".npy", ".pt") else path.name
    return path.with_name(f"{stem}.meta.json")


def read_meta(path: str | Path) -> dict[str, Any]:
    meta = read_json(path, "packed meta not found (pack the split first)")
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path}: not a fastpack meta of format_version {FORMAT_VERSION}")
    return meta
