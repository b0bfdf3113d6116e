"""Numba kernels over flat buffers: documents as `values` + int64 `offsets`, windows as 2-D arrays.

Pure functions of arrays (numpy and numba only): no paths, no logging. Where they run in
parallel they count first, then fill disjoint slices, so the result does not depend on the
number of threads.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def stream_positions(offsets, n_extra, start):
    """Where each document starts in the stream when `n_extra` separators follow every non-empty one.

    Returns int64[n_docs + 1]; the last entry is the stream's end.
    """
    n_docs = offsets.size - 1
    pos = np.empty(n_docs + 1, np.int64)
    p = start
    for i in range(n_docs):
        pos[i] = p
        n = offsets[i + 1] - offsets[i]
        if n > 0:
            p += n + n_extra
    pos[n_docs] = p
    return pos


@njit(cache=True, parallel=True)
def build_stream(values, offsets, positions, bos, eos, out):
    """out[positions[i]:] = [bos] + doc_i + [eos] for every non-empty document (bos/eos < 0: none)."""
    n_docs = offsets.size - 1
    for i in prange(n_docs):
        a = offsets[i]
        n = offsets[i + 1] - a
        if n == 0:
            continue
        p = positions[i]
        if bos >= 0:
            out[p] = bos
            p += 1
        out[p:p + n] = values[a:a + n]
        if eos >= 0:
            out[p + n] = eos


@njit(cache=True, parallel=True)
def cut_windows(stream, first, n_windows, stride, out):
    """out[w] = stream[(first + w) * stride : ... + seq_len] for w < n_windows (overlapping when stride < seq_len)."""
    seq_len = out.shape[1]
    for w in prange(n_windows):
        a = (first + w) * stride
        for t in range(seq_len):
            out[w, t] = stream[a + t]


@njit(cache=True)
def document_window_counts(lengths, seq_len, stride):
    """`document` mode: windows per document and the padding of its last one.

    Like concat's tail rule: full windows, then one padded window at the first start that did
    not fit, when that start is still inside the document.
    """
    counts = np.zeros(lengths.size, np.int64)
    padding = np.zeros(lengths.size, np.int64)
    for i in range(lengths.size):
        n = lengths[i]
        full = 0 if n < seq_len else (n - seq_len) // stride + 1
        counts[i] = full
        if full * stride < n:
            counts[i] += 1
            padding[i] = seq_len - (n - full * stride)
    return counts, padding


@njit(cache=True, parallel=True)
def fill_document_windows(stream, starts, lengths, window_offsets, first, stride, pad, out):
    """out[t] = window `first + t` of all documents' windows (window_offsets: per-document cumulative counts)."""
    seq_len = out.shape[1]
    for t in prange(out.shape[0]):
        w = first + t
        i = np.searchsorted(window_offsets, w, side="right") - 1
        s = (w - window_offsets[i]) * stride
        a = starts[i] + s
        m = min(seq_len, lengths[i] - s)
        for k in range(m):
            out[t, k] = stream[a + k]
        for k in range(m, seq_len):
            out[t, k] = pad


@njit(cache=True)
def first_out_of_range(values, limit):
    """Index of the first value < 0 or >= limit, or -1: checks ids from Arrow inputs before the cast to int32."""
    for i in range(values.size):
        v = values[i]
        if v < 0 or v >= limit:
            return i
    return -1
