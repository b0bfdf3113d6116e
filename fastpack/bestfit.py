"""`--mode bestfit`: documents placed whole into windows by Best-Fit-Decreasing (Ding et al., 2024).

Documents (with their separators) longer than seq_len are first cut into seq_len pieces; then
all pieces of the split, not of a batch or a file, are placed longest first, each into the
window it fills best; the rest of each window is padding. Placement is computed on lengths
alone, so it is deterministic and does not depend on threads or block size.

Two passes keep memory bounded by the number of documents, not tokens: pass one reads only the
lengths, the placement follows, pass two streams the documents again into their slots of the
output file, which is memory-mapped and preallocated (its pages released as they are written).
"""
from __future__ import annotations

import mmap
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from fastpack import kernels
from fastpack.readers import TokenBatch
from fastpack.windows import WindowCounts
from fastpack.writers import write_npy_header

_RELEASE_BYTES = 16 << 20  # give written output pages back to the page cache this often


def pack_bestfit(first_pass: Iterable[TokenBatch], second_pass: Callable[[], Iterable[TokenBatch]], out_path: Path,
                 *, seq_len: int, pad_id: int, bos: bool, eos: bool, dtype,
                 boundaries=None) -> WindowCounts:
    """Two passes over the same documents -> `out_path` (.npy) and the sidecar."""
    dtype = np.dtype(dtype)
    counts = WindowCounts()
    lengths = []
    for batch in first_pass:  # pass one: lengths only
        lengths.append(np.diff(batch.offsets))
        counts.add_documents(batch.values.size, batch.offsets, bos, eos)
    doc_lengths = np.concatenate(lengths) if lengths else np.empty(0, np.int64)
    first_piece, piece_lengths = kernels.cut_pieces(doc_lengths, seq_len)
    order, bins, offsets, used = kernels.best_fit_decreasing(piece_lengths, seq_len)
    n_bins = used.size
    counts.windows = n_bins
    counts.padded = n_bins * seq_len - int(used.sum())
    counts.documents_split = int(np.count_nonzero(doc_lengths > seq_len))
    piece_dst = bins * seq_len + offsets

    with open(out_path, "wb") as f:
        header = write_npy_header(f, (n_bins, seq_len), dtype)
        f.truncate(header + n_bins * seq_len * dtype.itemsize)
    if n_bins:
        with open(out_path, "r+b") as f:
            mm = mmap.mmap(f.fileno(), 0)
        out = np.frombuffer(mm, dtype, count=n_bins * seq_len, offset=header)
        try:
            first_doc, since_release = 0, 0
            for batch in second_pass():  # pass two: every piece to its slot
                n = batch.offsets.size - 1
                kernels.scatter_pieces(batch.values, batch.offsets, first_piece[first_doc:first_doc + n + 1],
                                       piece_lengths, piece_dst, out)
                first_doc += n
                since_release += batch.values.size * dtype.itemsize
                if since_release > _RELEASE_BYTES:  # keep RSS flat: the data stays in the page cache
                    mm.madvise(mmap.MADV_DONTNEED)
                    since_release = 0
            if first_doc != doc_lengths.size:
                raise RuntimeError(f"pass two read {first_doc} documents, pass one {doc_lengths.size}")
            if pad_id != 0:  # the preallocated file reads as zeros
                kernels.fill_tails(out.reshape(n_bins, seq_len), used, pad_id)
        finally:
            del out
            _close(mm)
    if boundaries is not None:
        piece_docs = np.repeat(np.arange(doc_lengths.size, dtype=np.int64), np.diff(first_piece))
        boundaries.add(*kernels.bin_segments(order, bins, piece_lengths, piece_docs, n_bins))
    return counts


def _close(mm: mmap.mmap) -> None:
    """Unmap the output. A view can outlive `del` in a reference cycle (seen after numba's first
    compile); collect it, and if one is still alive leave the unmapping to it: the data is in the page cache."""
    try:
        mm.close()
    except BufferError:
        import gc

        gc.collect()
        try:
            mm.close()
        except BufferError:
            pass
