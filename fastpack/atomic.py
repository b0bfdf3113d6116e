"""Write-then-rename, so an interrupted run never leaves a partial file under a final name.

Every writer names its temp `.NAME.tmp-<pid>-<random>` beside the final NAME (one helper,
`temp_path_for`), so a later run can tell the leftovers of a killed process from the temps of a
live one: `reclaim_temps(folder)` removes those whose pid is no longer alive on this host.
Several outputs that must appear together are staged and committed back to back (`Staging`).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import orjson

from fastpack import faults

_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]{8}$")


def temp_path_for(final: Path) -> Path:
    """A unique hidden sibling of `final` (same folder, so the rename is atomic)."""
    final = Path(final)
    return final.with_name(f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def naming(path: str | os.PathLike) -> Iterator[None]:
    """OS errors raised inside name `path` when they name nothing (a write() on a full disk names no file)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            exc.filename = str(path)
        raise


def commit(tmp: Path, final: Path) -> None:
    """Rename a complete temp onto its final name (the one place a fault can be injected for tests)."""
    faults.before_commit(final)
    os.replace(tmp, final)


def remove_temp(tmp: Path) -> None:
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path; rename it onto `final` only if the block finishes, else delete it and re-raise."""
    final = Path(final)
    with naming(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path_for(final)
        try:
            yield tmp
            commit(tmp, final)
        except BaseException:
            remove_temp(tmp)
            raise


class Staging:
    """Outputs that belong together: each written to its temp, then all renamed back to back.

    The old files stay valid and in place while the new ones are written (which takes the time);
    the swap itself is a few renames. On any error every temp is removed and the error re-raised.
    """

    def __init__(self) -> None:
        self.staged: list[tuple[Path, Path]] = []

    def stage(self, final: str | os.PathLike, tmp: Path | None = None) -> Path:
        final = Path(final)
        tmp = tmp or temp_path_for(final)
        self.staged.append((tmp, final))
        return tmp

    def commit(self) -> None:
        for tmp, final in self.staged:
            with naming(final):
                commit(tmp, final)
        self.staged = []

    def abort(self) -> None:
        for tmp, _ in self.staged:
            remove_temp(tmp)
        self.staged = []


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def json_bytes(obj: Any) -> bytes:
    """Indented, sorted keys and a trailing newline, so the same content gives the same bytes."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY) + b"\n"


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_bytes_atomic(path, json_bytes(obj))


# --- leftovers of killed runs ------------------------------------------------------------------
@dataclass
class Reclaimed:
    """Temps of dead processes removed from an output folder (counted in the command's summary)."""

    paths: list[str] = field(default_factory=list)
    bytes: int = 0

    def __bool__(self) -> bool:
        return bool(self.paths)

    def add(self, other: "Reclaimed") -> "Reclaimed":
        self.paths += other.paths
        self.bytes += other.bytes
        return self

    def describe(self) -> str:
        return f"reclaimed {len(self.paths)} temp file(s) of killed runs ({_human(self.bytes)})"

    def to_dict(self) -> dict[str, Any]:
        return {"files": len(self.paths), "bytes": self.bytes}


def temp_owner(name: str) -> int | None:
    """The pid in a `.NAME.tmp-<pid>-<random>` name, else None (not one of ours)."""
    match = _TEMP_RE.match(name)
    return int(match.group("pid")) if match else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError as exc:
        return exc.errno != errno.ESRCH
    return True


def reclaim_temps(*folders: str | os.PathLike) -> Reclaimed:
    """Remove our temps (files or folders) in `folders` whose writing process is gone.

    Pids are those of this host: a folder written by several machines at once is not supported
    (the output locks are per host too).
    """
    found = Reclaimed()
    for folder in dict.fromkeys(Path(f) for f in folders):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            pid = temp_owner(entry.name)
            if pid is None or pid == os.getpid() or pid_alive(pid):
                continue
            size = _size(Path(entry.path))
            remove_temp(Path(entry.path))
            if not os.path.lexists(entry.path):
                found.paths.append(entry.path)
                found.bytes += size
    return found


def temp_bytes(folder: str | os.PathLike) -> int:
    """Bytes held by our temps in `folder`, live or dead (what a disk cap must count)."""
    try:
        return sum(_size(Path(e.path)) for e in os.scandir(folder) if temp_owner(e.name) is not None)
    except OSError:
        return 0


def _size(path: Path) -> int:
    try:
        if path.is_dir() and not path.is_symlink():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
        return path.lstat().st_size
    except OSError:
        return 0


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
