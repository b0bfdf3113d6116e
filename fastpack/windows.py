"""Windowers: pieces of the token stream in, rows of `seq_len` tokens out, through small reused buffers.

The readers hand over the stream already cut into documents with their separators
([bos] doc [eos]; `offsets` delimit them). `concat` (DESIGN.md): window k = stream[k*stride :
k*stride + seq_len], spanning pieces, blocks and files; with stride == seq_len the windows *are*
the stream, so pieces go to the file as they come. The last partial window is dropped, or padded
when `pad_last` (starting at the first window start that did not fit, if inside the stream).
`document`: every document is windowed alone, its last partial window padded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fastpack import kernels

CHUNK_TOKENS = 1 << 22  # overlapping or per-document rows are cut into buffers of about this many tokens


class Sink(Protocol):
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


class _Windower:
    def __init__(self, *, seq_len: int, stride: int, bos: bool, eos: bool, pad_id: int | None, dtype,
                 sink: Sink) -> None:
        self.seq_len, self.stride = seq_len, stride
        self.bos, self.eos = bos, eos
        self.pad = pad_id
        self.dtype = np.dtype(dtype)
        self.sink = sink
        self.counts = WindowCounts()
        self._buffers: dict[str, np.ndarray] = {}

    def _buffer(self, name: str, size: int, dtype, keep: int = 0) -> np.ndarray:
        """A reused buffer of at least `size`; growing keeps its first `keep` elements."""
        buf = self._buffers.get(name)
        if buf is None or buf.size < size:
            grown = np.empty(max(size, 0 if buf is None else 2 * buf.size), dtype)
            if keep:
                grown[:keep] = buf[:keep]
            buf = self._buffers[name] = grown
        return buf[:size]

    def _count(self, tokens: np.ndarray, offsets: np.ndarray) -> None:
        c = self.counts
        n_docs = offsets.size - 1
        nonempty = int(np.count_nonzero(offsets[1:] != offsets[:-1]))
        c.documents += n_docs
        c.empty_documents += n_docs - nonempty
        c.tokens_in += tokens.size - nonempty * (self.bos + self.eos)
        c.eos_added += nonempty * self.eos
        c.bos_added += nonempty * self.bos

    def _rows(self, n: int) -> np.ndarray:
        return self._buffer("rows", n * self.seq_len, self.dtype).reshape(n, self.seq_len)

    def _rows_per_chunk(self) -> int:
        return max(1, CHUNK_TOKENS // self.seq_len)

    def _write_tokens(self, tokens: np.ndarray) -> None:
        if tokens.dtype != self.dtype:  # uint16 output: ids were checked to fit
            out = self._buffer("cast", tokens.size, self.dtype)
            out[:] = tokens
            tokens = out
        self.sink.write(tokens)


class ConcatWindower(_Windower):
    def __init__(self, *, pad_last: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pad_last = pad_last
        self.stream_tokens = 0  # length of the stream so far
        self.carry = 0  # stride < seq_len: tokens kept for the next piece, at the head of the stream buffer

    def feed(self, tokens: np.ndarray, offsets: np.ndarray) -> None:
        self._count(tokens, offsets)
        self.stream_tokens += tokens.size
        if self.stride == self.seq_len:
            self._write_tokens(tokens)  # disjoint windows are the stream itself; the tail is settled in finish()
            return
        L, s = self.seq_len, self.stride
        total = self.carry + tokens.size
        stream = self._buffer("stream", total, np.int32, keep=self.carry)
        stream[self.carry:] = tokens
        n = 0 if total < L else (total - L) // s + 1
        rows = self._rows_per_chunk()
        for first in range(0, n, rows):
            out = self._rows(min(rows, n - first))
            kernels.cut_windows(stream, first, out.shape[0], s, out)
            self.sink.write(out)
        self.counts.windows += n
        self.carry = total - n * s
        stream[: self.carry] = stream[n * s:total]

    def finish(self) -> None:
        c, L, s = self.counts, self.seq_len, self.stride
        if s == L:
            c.windows = self.stream_tokens // L
            tail = self.stream_tokens - c.windows * L
            tail_tokens = None
        else:
            tail = self.carry
            tail_tokens = self._buffers["stream"][:tail] if tail else None
        if self.pad_last and tail:
            if tail_tokens is not None:
                self._write_tokens(tail_tokens)
            self._write_tokens(np.full(L - tail, self.pad, self.dtype))
            c.windows += 1
            c.padded += L - tail
        else:
            if s == L:
                self.sink.truncate(c.windows * L)
            covered = 0 if c.windows == 0 else (c.windows - 1) * s + L
            c.dropped += self.stream_tokens - covered


class DocumentWindower(_Windower):
    def feed(self, tokens: np.ndarray, offsets: np.ndarray) -> None:
        self._count(tokens, offsets)
        lengths = np.diff(offsets)
        counts, padding = kernels.document_window_counts(lengths, self.seq_len, self.stride)
        window_offsets = np.zeros(counts.size + 1, np.int64)
        np.cumsum(counts, out=window_offsets[1:])
        n = int(window_offsets[-1])
        rows = self._rows_per_chunk()
        for first in range(0, n, rows):
            out = self._rows(min(rows, n - first))
            kernels.fill_document_windows(tokens, offsets[:-1], lengths, window_offsets, first, self.stride,
                                          self.pad, out)
            self.sink.write(out)
        self.counts.windows += n
        self.counts.padded += int(padding.sum())

    def finish(self) -> None:
        pass


def make_windower(mode: str, *, pad_last: bool, **kwargs) -> _Windower:
    if mode == "concat":
        return ConcatWindower(pad_last=pad_last, **kwargs)
    if mode == "document":
        return DocumentWindower(**kwargs)
    raise ValueError(f"unknown mode {mode!r}")
