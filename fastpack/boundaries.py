"""The boundaries sidecar `{name}.docs.npz`: which document segments every window holds.

A packed window holds runs ("segments") of one or more documents (separators included),
then padding. The sidecar stores them in CSR form, so a loader builds position ids,
`cu_seqlens` or a block-diagonal mask without scanning for eos:

    window_offsets   int64 [n_windows + 1]   segments of window i: [window_offsets[i], window_offsets[i+1])
    segment_lengths  int32 [n_segments]      tokens of each segment, in window order; they sum to
                                             seq_len minus the window's padding
    segment_docs     int64 [n_segments]      the document each segment comes from: its 0-based index
                                             in the input (every line or row counts, empty ones too)

With overlapping windows (stride < seq_len) a document's run appears in every window that
covers it. The arrays are written as they are produced (bounded memory) and zipped into the
.npz at the end, under a temp name, renamed into place.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from fastpack.atomic import Staging, atomic_path, temp_path_for
from fastpack.writers import NpyWriter

ARRAYS = {"window_offsets": np.int64, "segment_lengths": np.int32, "segment_docs": np.int64}


def docs_path_for(meta_path: str | os.PathLike) -> Path:
    """`train.meta.json` -> `train.docs.npz`."""
    meta_path = Path(meta_path)
    return meta_path.with_name(meta_path.name[: -len(".meta.json")] + ".docs.npz")


class BoundariesWriter:
    """Streams the three sidecar arrays to temp .npy files; `finish` zips them into the .npz."""

    def __init__(self, final: str | os.PathLike) -> None:
        self.final = Path(final)
        self._tmp = {name: temp_path_for(self.final.with_name(f"{self.final.name}.{name}.npy")) for name in ARRAYS}
        self._writers = {name: NpyWriter(self._tmp[name], None, dtype) for name, dtype in ARRAYS.items()}
        self._writers["window_offsets"].write(np.zeros(1, np.int64))
        self.segments = 0

    def add(self, counts: np.ndarray, lengths: np.ndarray, docs: np.ndarray) -> None:
        """Windows with `counts[i]` segments each, then their segments' lengths and documents."""
        if counts.size:
            self._writers["window_offsets"].write(self.segments + np.cumsum(counts, dtype=np.int64))
            self.segments += int(counts.sum())
        self._writers["segment_lengths"].write(np.ascontiguousarray(lengths, np.int32))
        self._writers["segment_docs"].write(np.ascontiguousarray(docs, np.int64))

    def finish(self) -> Path:
        with atomic_path(self.final) as tmp:
            self._zip_into(tmp)
        self.abort()
        return self.final

    def stage(self, staging: Staging) -> None:
        """Zip the sidecar into a temp that `staging` renames together with the arrays."""
        self._zip_into(staging.stage(self.final))

    def _zip_into(self, target: Path) -> None:
        for writer in self._writers.values():
            writer.close()
        with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, path in self._tmp.items():
                zf.write(path, f"{name}.npy")

    def abort(self) -> None:
        for name, writer in self._writers.items():
            writer.abort()
            self._tmp[name].unlink(missing_ok=True)


def read_boundaries(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The sidecar's arrays (window_offsets, segment_lengths, segment_docs)."""
    with np.load(path) as npz:
        return {name: npz[name].reshape(-1) for name in ARRAYS}

