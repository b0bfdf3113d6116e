"""Does a packed array on disk still match its meta? Read from the headers, never the data.

Used by the "up to date" check: an array of another run (a concurrent writer, a copy, an
interrupted re-pack) must not pass for the one the meta describes.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np


def array_problem(path: Path, shape: Sequence[int], dtype: str) -> Optional[str]:
    """None when the .npy / .pt at `path` has this shape and dtype; else what differs."""
    expected_bytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    try:
        if path.suffix == ".npy":
            with open(path, "rb") as f:
                major, _ = np.lib.format.read_magic(f)
                read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                found_shape, _, found_dtype = read_header(f, max_header_size=1 << 20)
            if tuple(found_shape) != tuple(shape) or np.dtype(found_dtype) != np.dtype(dtype):
                return f"holds {np.dtype(found_dtype).name} {list(found_shape)}, the meta says {dtype} {list(shape)}"
            return None
        with zipfile.ZipFile(path) as zf:
            sizes = [i.file_size for i in zf.infolist() if i.filename.endswith("/data/0")]
        if sum(sizes) != expected_bytes:
            return f"holds {sum(sizes):,} bytes of data, the meta's {dtype} {list(shape)} needs {expected_bytes:,}"
        return None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        return f"unreadable ({exc})"


def newer_than(path: Path, reference: Path) -> bool:
    """`path` was written after `reference` (an array after its meta: an interrupted re-pack)."""
    try:
        return os.stat(path).st_mtime_ns > os.stat(reference).st_mtime_ns
    except OSError:
        return True
