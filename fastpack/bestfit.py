"""`--mode bestfit`: documents placed whole into windows by Best-Fit-Decreasing (Ding et al., 2024).

Documents (with their separators) longer than seq_len are first cut into seq_len pieces; then
all pieces of the split, not of a batch or a file, are placed longest first, each into the
window it fills best; the rest of each window is padding. Placement is computed on lengths
alone, so it is deterministic and does not depend on threads or block size.

Two passes keep memory bounded by the number of documents, not tokens: pass one reads only the
lengths, the placement follows, pass two streams the documents again into their slots of the
output, which the sink preallocates and maps (a file's pages released as they are written).
Same interface as the other windowers (windows.py): `feed`, `next_pass`, `finish`, `counts`.
"""
from __future__ import annotations

import numpy as np

from fastpack import kernels
from fastpack.separators import Separators
from fastpack.windows import WindowCounts

_RELEASE_BYTES = 16 << 20  # give written output pages back to the page cache this often


class BestFitWindower:
    passes = 2

    def __init__(self, *, seq_len: int, stride: int, separators: Separators, pad_id: int | None, dtype, sink,
                 boundaries=None) -> None:
        assert stride == seq_len, "checked by the mode"
        self.seq_len, self.separators, self.pad = seq_len, separators, pad_id
        self.dtype = np.dtype(dtype)
        self.sink, self.boundaries = sink, boundaries
        self.counts = WindowCounts()
        self._lengths: list[np.ndarray] = []
        self._out: np.ndarray | None = None  # pass two: the mapped output rows
        self._first_doc = self._since_release = 0

    def feed(self, tokens: np.ndarray, offsets: np.ndarray) -> None:
        if self._out is None:  # pass one: lengths only
            self._lengths.append(np.diff(offsets))
            self.counts.add_documents(tokens.size, offsets, self.separators)
            return
        n = offsets.size - 1
        first = self._first_doc
        kernels.scatter_pieces(tokens, offsets, self._first_piece[first:first + n + 1], self._piece_lengths,
                               self._piece_dst, self._out.reshape(-1))
        self._first_doc += n
        self._since_release += tokens.size * self.dtype.itemsize
        if self._since_release > _RELEASE_BYTES:  # keep RSS flat: the data stays in the page cache
            self.sink.release_pages()
            self._since_release = 0

    def next_pass(self) -> None:
        """The placement, from pass one's lengths; then the output is preallocated for pass two."""
        c, L = self.counts, self.seq_len
        self._doc_lengths = np.concatenate(self._lengths) if self._lengths else np.empty(0, np.int64)
        self._lengths = []
        self._first_piece, self._piece_lengths = kernels.cut_pieces(self._doc_lengths, L)
        self._order, self._bins, offsets, self._used = kernels.best_fit_decreasing(self._piece_lengths, L)
        c.windows = self._used.size
        c.padded = c.windows * L - int(self._used.sum())
        c.documents_split = int(np.count_nonzero(self._doc_lengths > L))
        self._piece_dst = self._bins * L + offsets
        self._out = self.sink.mapped(c.windows)  # reads as zeros

    def finish(self) -> None:
        if self._first_doc != self._doc_lengths.size:
            raise RuntimeError(f"pass two read {self._first_doc} documents, pass one {self._doc_lengths.size}")
        if self.pad != 0 and self.counts.windows:
            kernels.fill_tails(self._out, self._used, self.pad)
        self._out = None
        if self.boundaries is not None:
            piece_docs = np.repeat(np.arange(self._doc_lengths.size, dtype=np.int64), np.diff(self._first_piece))
            self.boundaries.add(*kernels.bin_segments(self._order, self._bins, self._piece_lengths, piece_docs,
                                                      self.counts.windows))
