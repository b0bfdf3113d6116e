"""JSONL in and out: line readers that name file and line on bad input, and atomic hashing writers."""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any, Iterator

import orjson

from fastpack.atomic import atomic_path
from fastpack.corpus.build import rel, remember_sha256
from fastpack.errors import UserError

_BUFFER = 1 << 20


class HashingWriter:
    """A binary file that keeps the sha256 and size of what was written to it."""

    def __init__(self, fh) -> None:
        self._fh = fh
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self._sha.update(data)
        self.size += len(data)

    def write_record(self, record: dict[str, Any]) -> None:
        self.write(orjson.dumps(record) + b"\n")

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


@contextlib.contextmanager
def open_output(final: Path, root: Path, entries: list[dict[str, Any]]) -> Iterator[HashingWriter]:
    """Write `final` atomically; on success append its {path, size, sha256} to `entries`."""
    with atomic_path(final) as tmp:
        with open(tmp, "wb", buffering=_BUFFER) as fh:
            writer = HashingWriter(fh)
            yield writer
    remember_sha256(final, writer.hexdigest())
    entries.append({"path": rel(final, root), "size": writer.size, "sha256": writer.hexdigest()})


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its newline) for every non-blank line."""
    with open(path, "rb", buffering=_BUFFER) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield lineno, line


def parse_record(path: Path | str, lineno: int, line: bytes) -> dict[str, Any]:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise UserError(f"{path}:{lineno}: expected a JSON object, found invalid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise UserError(f"{path}:{lineno}: expected a JSON object, found {type(record).__name__}")
    return record


def text_of(path: Path | str, lineno: int, record: dict[str, Any], field: str = "text") -> str:
    text = record.get(field)
    if not isinstance(text, str):
        found = f"a {type(text).__name__}" if field in record else f"keys {sorted(record)[:8]}"
        raise UserError(f"{path}:{lineno}: expected a string field {field!r}, found {found}")
    return text


def require_file(path: Path, what: str, hint: str) -> Path:
    if not path.is_file():
        raise UserError(f"{path}: {what} not found ({hint})")
    return path


def file_size(path: Path) -> int:
    return os.stat(path).st_size
