"""What a stage was built from, so a rerun with the same inputs and settings does nothing.

Each stage ends by writing a *marker* (its summary report, or `tokenizer_info.json`) that holds:

    "build": {
      "stage": "split", "version": 1,                 # version: bumped when the stage's rules change
      "inputs":  [{"path": "dataset/preprocessed/...jsonl", "size": 123, "sha256": "..."}],
      "params":  {...every config field the stage reads...},
      "outputs": [{"path": "dataset/splits/train.jsonl", "size": 456, "sha256": "..."}]
    }

A stage is up to date when its marker exists, its inputs have the recorded sizes and sha256
digests (paths may move), its version and params are equal, and every output is where the config
now puts it, with its recorded size. The marker is written last, so an interrupted stage is rebuilt.
Paths are relative to the root (the folder holding config/) when under it, else absolute.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

_CHUNK = 1 << 20
# (path, size, mtime_ns, inode) -> sha256: each file is hashed once per process, and never when we wrote it.
_DIGESTS: dict[tuple, str] = {}


def _stat_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


def file_sha256(path: str | os.PathLike) -> str:
    path = Path(path)
    key = _stat_key(path)
    digest = _DIGESTS.get(key)
    if digest is None:
        sha = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                sha.update(chunk)
        digest = _DIGESTS[key] = sha.hexdigest()
    return digest


def remember_sha256(path: str | os.PathLike, digest: str) -> None:
    """Record the digest of a file we just wrote (computed while writing it)."""
    _DIGESTS[_stat_key(Path(path))] = digest


def rel(path: str | os.PathLike, root: str | os.PathLike) -> str:
    path, root = Path(path).resolve(), Path(root).resolve()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def fingerprint(path: str | os.PathLike, root: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    return {"path": rel(path, root), "size": path.stat().st_size, "sha256": file_sha256(path)}


def tree_fingerprint(files: Iterable[Path], base: Path, root: str | os.PathLike) -> dict[str, Any]:
    """One entry for many files: the sha256 of their sorted (relative path, size, sha256) lines."""
    sha, total, count = hashlib.sha256(), 0, 0
    for path in sorted(files, key=lambda p: p.relative_to(base).as_posix()):
        size = path.stat().st_size
        sha.update(f"{path.relative_to(base).as_posix()}\0{size}\0{file_sha256(path)}\n".encode())
        total, count = total + size, count + 1
    return {"path": rel(base, root), "files": count, "size": total, "sha256": sha.hexdigest()}


@dataclass(frozen=True, kw_only=True)
class Build:
    stage: str
    version: int
    inputs: list[dict[str, Any]]
    params: dict[str, Any]
    outputs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "version": self.version, "inputs": self.inputs,
                "params": self.params, "outputs": self.outputs}

    def with_outputs(self, outputs: list[dict[str, Any]]) -> "Build":
        return Build(stage=self.stage, version=self.version, inputs=self.inputs, params=self.params, outputs=outputs)


def read_build(marker: Path, *keys: str) -> Optional[dict[str, Any]]:
    """The build block of a marker file (at `keys`, default `build`), or None when absent or unreadable."""
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
        for key in keys or ("build",):
            data = data[key]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def _content(entries: list[dict[str, Any]]) -> list[tuple]:
    return [(e.get("size"), e.get("sha256"), e.get("files")) for e in entries]


def up_to_date(recorded: Optional[dict[str, Any]], current: Build, outputs: list[Path], root: Path) -> bool:
    """True when `recorded` was built from the same inputs and params into these `outputs`."""
    if not recorded or recorded.get("stage") != current.stage or recorded.get("version") != current.version:
        return False
    # Round-trip the params through JSON so tuples/lists and int/float compare as they were stored.
    if json.loads(json.dumps(current.params)) != recorded.get("params"):
        return False
    if _content(current.inputs) != _content(recorded.get("inputs") or []):
        return False
    built = {e.get("path"): e for e in recorded.get("outputs") or []}
    if sorted(rel(p, root) for p in outputs) != sorted(built):
        return False
    return all(p.is_file() and p.stat().st_size == built[rel(p, root)].get("size") for p in outputs)


@dataclass(frozen=True)
class StageResult:
    """What a stage did: `skipped` when its outputs were already up to date."""

    stage: str
    skipped: bool
    message: str
    outputs: tuple[Path, ...] = ()
    summary: dict[str, Any] = field(default_factory=dict)
