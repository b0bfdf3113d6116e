"""Windowers: pieces of the token stream in, rows of `seq_len` tokens out, through small reused buffers.

The readers hand over the stream already cut into documents with their separators
([bos] doc [eos]; `offsets` delimit them). `concat` (DESIGN.md): window k = stream[k*stride :
k*stride + seq_len], spanning pieces, blocks and files; with stride == seq_len the windows *are*
the stream, so pieces go to the file as they come. The last partial window is dropped, or padded
when `pad_last` (starting at the first window start that did not fit, if inside the stream).
`document`: every document is windowed alone, its last partial window padded.

Each windower also reports, per window, the document segments it holds (the boundaries
sidecar, see `boundaries.py`) and counts the documents split across windows or truncated.

The interface every mode's windower has (best-fit's is in bestfit.py): `passes` reads of the
input, each a series of `feed(tokens, offsets)`, `next_pass()` between them, then `finish()`;
`counts` afterwards. Which mode uses which windower: modes.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fastpack import kernels
from fastpack.buffers import Buffers
from fastpack.separators import Separators


class Sink(Protocol):
    rows_per_chunk: int

    def reserve(self, n_rows: int) -> np.ndarray: ...  # [n_rows, seq_len] to fill (n_rows <= rows_per_chunk)

    def commit(self, n_rows: int) -> None: ...  # ... and hand them over

    def write(self, tokens: np.ndarray) -> None: ...  # C-contiguous, any shape: appended as a flat run

    def truncate(self, n_tokens: int) -> None: ...  # drop everything after the first n_tokens


@dataclass
class WindowCounts:
    documents: int = 0
    empty_documents: int = 0
    tokens_in: int = 0
    eos_added: int = 0
    bos_added: int = 0
    windows: int = 0
    padded: int = 0
    dropped: int = 0
    documents_split: int = 0  # no single window holds the whole document
    documents_truncated: int = 0  # some of its tokens are in no window

    def add_documents(self, n_tokens: int, offsets: np.ndarray, separators: Separators) -> None:
        """A batch of stream pieces: documents with their separators, `n_tokens` in all."""
        n_docs = offsets.size - 1
        nonempty = int(np.count_nonzero(offsets[1:] != offsets[:-1]))
        self.documents += n_docs
        self.empty_documents += n_docs - nonempty
        self.tokens_in += n_tokens - nonempty * separators.per_doc
        self.eos_added += nonempty * separators.tail
        self.bos_added += nonempty * separators.head


class _DocTracker:
    """The non-empty documents that unfinished windows may still hold, as absolute stream spans."""

    def __init__(self) -> None:
        self.starts = self.ends = self.ids = np.empty(0, np.int64)
        self.whole = np.empty(0, np.bool_)
        self.split = self.truncated = 0

    def add(self, offsets: np.ndarray, base: int, first_id: int) -> None:
        nonempty = np.flatnonzero(offsets[1:] != offsets[:-1])
        self.starts = np.concatenate([self.starts, base + offsets[nonempty]])
        self.ends = np.concatenate([self.ends, base + offsets[nonempty + 1]])
        self.ids = np.concatenate([self.ids, first_id + nonempty])
        self.whole = np.concatenate([self.whole, np.zeros(nonempty.size, np.bool_)])

    def segments(self, first_start: int, n: int, stride: int, seq_len: int, stream_end: int):
        return kernels.concat_segments(self.starts, self.ends, self.ids, first_start, n, stride, seq_len,
                                       stream_end, self.whole)

    def retire(self, next_start: int) -> None:
        """Documents ending before the next window starts are in no later window."""
        done = self.ends <= next_start
        self.split += int(np.count_nonzero(done & ~self.whole))
        keep = ~done
        self.starts, self.ends, self.ids, self.whole = self.starts[keep], self.ends[keep], self.ids[keep], self.whole[keep]

    def finish(self, covered_end: int) -> None:
        covered = self.ends <= covered_end
        self.split += int(np.count_nonzero(covered & ~self.whole))
        self.truncated += int(np.count_nonzero(~covered))


class _Windower:
    passes = 1

    def __init__(self, *, seq_len: int, stride: int, separators: Separators, pad_id: int | None, dtype,
                 sink: Sink, boundaries=None) -> None:
        self.seq_len, self.stride = seq_len, stride
        self.separators = separators
        self.pad = pad_id
        self.dtype = np.dtype(dtype)
        self.sink = sink
        self.boundaries = boundaries  # a BoundariesWriter, or None
        self.counts = WindowCounts()
        self._buffers = Buffers()

    def _add_segments(self, counts: np.ndarray, lengths: np.ndarray, docs: np.ndarray) -> None:
        if self.boundaries is not None:
            self.boundaries.add(counts, lengths, docs)

    def _count(self, tokens: np.ndarray, offsets: np.ndarray) -> None:
        self.counts.add_documents(tokens.size, offsets, self.separators)

    def next_pass(self) -> None:
        raise AssertionError("one pass")

    def _write_tokens(self, tokens: np.ndarray) -> None:
        if tokens.dtype != self.dtype:  # uint16 output: ids were checked to fit
            out = self._buffers.get("cast", tokens.size, self.dtype)
            out[:] = tokens
            tokens = out
        self.sink.write(tokens)


class ConcatWindower(_Windower):
    def __init__(self, *, pad_last: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pad_last = pad_last
        self.stream_tokens = 0  # length of the stream so far
        self.carry = 0  # stride < seq_len: tokens kept for the next piece, at the head of the stream buffer
        self.docs = _DocTracker()

    def feed(self, tokens: np.ndarray, offsets: np.ndarray) -> None:
        self.docs.add(offsets, self.stream_tokens, self.counts.documents)
        self._count(tokens, offsets)
        self.stream_tokens += tokens.size
        L, s = self.seq_len, self.stride
        done = self.counts.windows
        if s == L:
            self._write_tokens(tokens)  # disjoint windows are the stream itself; the tail is settled in finish()
            n = self.stream_tokens // L - done
        else:
            total = self.carry + tokens.size
            stream = self._buffers.get("stream", total, np.int32, keep=self.carry)
            stream[self.carry:] = tokens
            n = 0 if total < L else (total - L) // s + 1
            rows = self.sink.rows_per_chunk
            for first in range(0, n, rows):
                k = min(rows, n - first)
                kernels.cut_windows(stream, first, k, s, self.sink.reserve(k))
                self.sink.commit(k)
            self.carry = total - n * s
            stream[: self.carry] = stream[n * s:total]
        self._add_segments(*self.docs.segments(done * s, n, s, L, self.stream_tokens))
        self.counts.windows += n
        self.docs.retire(self.counts.windows * s)

    def finish(self) -> None:
        c, L, s = self.counts, self.seq_len, self.stride
        tail = self.stream_tokens - c.windows * s  # from the first window start that did not fit
        if self.pad_last and tail > 0:
            if s != L:
                self._write_tokens(self._buffers.get("stream", tail, np.int32))
            self._write_tokens(np.full(L - tail, self.pad, self.dtype))
            self._add_segments(*self.docs.segments(c.windows * s, 1, s, L, self.stream_tokens))
            c.windows += 1
            c.padded += L - tail
            covered = self.stream_tokens
        else:
            if s == L:
                self.sink.truncate(c.windows * L)
            covered = 0 if c.windows == 0 else (c.windows - 1) * s + L
            c.dropped += self.stream_tokens - covered
        self.docs.finish(covered)
        c.documents_split, c.documents_truncated = self.docs.split, self.docs.truncated


class DocumentWindower(_Windower):
    def feed(self, tokens: np.ndarray, offsets: np.ndarray) -> None:
        lengths = np.diff(offsets)
        counts, padding = kernels.document_window_counts(lengths, self.seq_len, self.stride)
        window_offsets = np.zeros(counts.size + 1, np.int64)
        np.cumsum(counts, out=window_offsets[1:])
        n = int(window_offsets[-1])
        rows = self.sink.rows_per_chunk
        for first in range(0, n, rows):
            k = min(rows, n - first)
            kernels.fill_document_windows(tokens, offsets[:-1], lengths, window_offsets, first, self.stride,
                                          self.pad, self.sink.reserve(k))
            self.sink.commit(k)
        doc_of_window = np.repeat(np.arange(counts.size), counts)  # one segment per window
        k = np.arange(n) - window_offsets[doc_of_window]
        self._add_segments(np.ones(n, np.int64), np.minimum(self.seq_len, lengths[doc_of_window] - k * self.stride),
                           self.counts.documents + doc_of_window)
        self.counts.documents_split += int(np.count_nonzero(lengths > self.seq_len))
        self._count(tokens, offsets)
        self.counts.windows += n
        self.counts.padded += int(padding.sum())

    def finish(self) -> None:
        pass

