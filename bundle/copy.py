"""Copy and hash in one pass: each chunk read once feeds sha256 and the destination write."""
from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Optional

CHUNK = 4 << 20  # 4 MiB: large enough that the syscalls vanish, small enough to stay in cache

Progress = Callable[[int], None]


def copy_stream(src: BinaryIO, dst: Optional[BinaryIO], progress: Optional[Progress] = None,
                chunk: int = CHUNK) -> tuple[int, str]:
    """Copy `src` to `dst` (None: hash only), return (bytes, sha256 hex). Reads `src` exactly once."""
    digest = hashlib.sha256()
    buf = bytearray(chunk)
    view = memoryview(buf)
    total = 0
    while True:
        n = src.readinto(buf)
        if not n:
            break
        piece = view[:n]
        digest.update(piece)
        if dst is not None:
            dst.write(piece)
        total += n
        if progress is not None:
            progress(n)
    return total, digest.hexdigest()


def copy_and_hash(src: Path, dst: Path, progress: Optional[Progress] = None) -> tuple[int, str]:
    """Copy the file `src` to `dst` (parents created) and return (size, sha256) of what was copied."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb", buffering=0) as fsrc, open(dst, "wb") as fdst:
        return copy_stream(fsrc, fdst, progress)


def hash_file(path: Path, progress: Optional[Progress] = None) -> tuple[int, str]:
    with open(path, "rb", buffering=0) as f:
        return copy_stream(f, None, progress)


@contextlib.contextmanager
def byte_bar(total: int, desc: str, enabled: bool) -> Iterator[Optional[Progress]]:
    """A tqdm bar over bytes when enabled (tqdm imported only then), else no callback."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, dynamic_ncols=True) as bar:
        yield bar.update
