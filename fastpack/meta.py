"""`{name}.meta.json`: what a packed split is, how it was made, and the cache key of a re-pack.

`PackMeta` is the one class that writes it (the packer) and reads it back (the trainer, audit,
the cache check). Layout, keys sorted when written:

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

The meta is written last: an array without its meta is an interrupted pack. A meta of another
format_version is refused (re-pack); a missing `docs` means no sidecar (packed before it existed).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from fastpack._version import __version__
from fastpack.errors import UserError
from fastpack.jsonfile import read_json

if TYPE_CHECKING:
    from fastpack.spec import PackSpec

FORMAT_VERSION = 1
_REQUIRED = ("name", "files", "shape", "dtype", "seq_len", "stride", "mode")


@dataclass(frozen=True, kw_only=True)
class PackMeta:
    """A packed split's description: its windows (seq_len, stride, mode, special ids), files, counts and origin."""

    name: str
    files: dict[str, Optional[str]]  # "npy"/"pt" -> file name beside the meta, or None
    shape: tuple[int, int]  # (n_windows, seq_len)
    dtype: str
    seq_len: int
    stride: int
    mode: str
    eos_id: Optional[int] = None
    bos_id: Optional[int] = None
    pad_id: Optional[int] = None  # None: no window holds padding
    vocab_size: Optional[int] = None  # set: the packer rejected every id >= it
    docs: Optional[str] = None  # the boundaries sidecar's file name
    counts: dict[str, int] = field(default_factory=dict)
    sources: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    shard: Optional[dict[str, int]] = None
    config: Optional[dict[str, Any]] = None
    format_version: int = FORMAT_VERSION
    fastpack_version: str = __version__

    @classmethod
    def of_pack(cls, spec: "PackSpec", *, name: str, files: dict[str, Path], docs: str, rows: int,
                counts: dict[str, int], sources: list[dict[str, Any]], config: Optional[dict[str, Any]]) -> "PackMeta":
        """The meta of a split just packed with `spec`: its window parameters are the spec's."""
        return cls(name=name, files={"npy": None, "pt": None} | {k: p.name for k, p in files.items()}, docs=docs,
                   shape=(rows, spec.seq_len), dtype=spec.dtype, seq_len=spec.seq_len, stride=spec.stride,
                   mode=spec.mode, eos_id=spec.eos_id, bos_id=spec.bos_id, pad_id=spec.pad_id,
                   vocab_size=spec.vocab_size, counts=counts, sources=sources, params=spec.to_dict(),
                   shard={"index": spec.shard_index, "count": spec.num_shards} if spec.num_shards > 1 else None,
                   config=config)

    def spec(self) -> "PackSpec":
        """The parameters it was packed with (from `params`)."""
        from fastpack.spec import PackSpec

        return PackSpec.from_dict(self.params)

    @property
    def n_windows(self) -> int:
        return self.shape[0]

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["shape"] = list(self.shape)
        return data

    @classmethod
    def from_json(cls, data: Any, source: str = "meta") -> "PackMeta":
        """The meta from its JSON object; a UserError naming `source` when it is not a meta of this format."""
        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
            raise UserError(f"{source}: not a fastpack meta of format_version {FORMAT_VERSION}")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise UserError(f"{source}: meta lacks {', '.join(missing)} (re-pack the split)")
        shape = data["shape"]
        if not (isinstance(shape, list) and len(shape) == 2 and all(type(x) is int for x in shape)):
            raise UserError(f"{source}: shape must be [n_windows, seq_len], got {shape!r}")
        for key in ("seq_len", "stride"):
            if type(data[key]) is not int or data[key] < 1:
                raise UserError(f"{source}: {key} must be an integer >= 1, got {data[key]!r}")
        from fastpack.modes import MODES

        if data["mode"] not in MODES:
            raise UserError(f"{source}: mode must be one of {', '.join(MODES)}, got {data['mode']!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["shape"] = tuple(shape)
        values["files"] = {"npy": None, "pt": None} | dict(data["files"] or {})
        return cls(**values)

    @classmethod
    def read(cls, path: str | Path) -> "PackMeta":
        return cls.from_json(read_json(path, "packed meta not found (pack the split first)"), str(path))

    def write(self, path: str | Path) -> None:
        from fastpack.atomic import write_json_atomic

        write_json_atomic(path, self.to_json())


def meta_path_for(array_path: str | Path) -> Path:
    """`train.npy` / `train.pt` / `train` -> `train.meta.json`."""
    path = Path(array_path)
    stem = path.name[: -len(path.suffix)] if path.suffix in (".npy", ".pt") else path.name
    return path.with_name(f"{stem}.meta.json")
