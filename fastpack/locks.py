"""Output locks: one writer per pack output and per training folder, the second one told who holds it.

An advisory `fcntl.flock` on a hidden `.NAME.lock` file beside the output, holding the owner's
pid. The kernel drops the lock when its process dies (even by `kill -9`), so a stale lock file
never blocks anyone; the file is removed on release. Where `fcntl` does not exist (Windows) the
lock is a no-op.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from fastpack.atomic import naming
from fastpack.errors import UserError


def lock_path_for(folder: str | os.PathLike, name: str) -> Path:
    return Path(folder) / f".{name}.lock"


@contextlib.contextmanager
def output_lock(lock_path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold `lock_path` for the block; a UserError naming the holder's pid when another process has it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover (Windows)
        yield
        return
    lock_path = Path(lock_path)
    with naming(lock_path):
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = _acquire(fcntl, lock_path, what)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock_path.unlink()  # while still held: a waiter that opened it retries on the new file
        os.close(fd)


def _acquire(fcntl, lock_path: Path, what: str) -> int:
    """Lock the file now at `lock_path` (retrying if a releasing holder removed it meanwhile)."""
    for _ in range(100):
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise UserError(f"{what} is being written by another run ({who}, lock {lock_path}); "
                            "wait for it to finish, or write elsewhere") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)
    raise UserError(f"{lock_path}: could not take the lock (it keeps being replaced)")


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
