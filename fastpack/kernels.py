"""Numba kernels over flat buffers: documents as `values` + int64 `offsets`, windows as 2-D arrays.

Pure functions of arrays (numpy and numba only): no paths, no logging. Copies are serial slice
copies (memory-bound: one core's memcpy beats two threads' loops); where work is parallel it
counts first, then fills disjoint slices, so the result does not depend on the number of threads.
"""
from __future__ import annotations

import numpy as np

from fastpack.kernel_cache import use_portable_cpu

use_portable_cpu()  # before numba's import: a cache compiled on another machine (the wheel's) loads here
from numba import njit, prange  # noqa: E402


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
def spread_documents(values, offsets, positions, head, out):
    """out[positions[i] + head:] = doc_i for every non-empty document: room for its separators around it."""
    n_docs = offsets.size - 1
    for i in prange(n_docs):
        a = offsets[i]
        n = offsets[i + 1] - a
        if n > 0:
            p = positions[i] + head
            out[p:p + n] = values[a:a + n]


@njit(cache=True)
def fill_separators(stream, offsets, bos, eos):
    """stream[offsets[i]] = bos and stream[offsets[i+1] - 1] = eos for every non-empty document (< 0: none)."""
    for i in range(offsets.size - 1):
        if offsets[i + 1] > offsets[i]:
            if bos >= 0:
                stream[offsets[i]] = bos
            if eos >= 0:
                stream[offsets[i + 1] - 1] = eos


def cut_windows(stream, first, n_windows, stride, out):
    """out[w] = stream[(first + w) * stride : ... + seq_len] for w < n_windows (overlapping when stride < seq_len).

    One numpy copy from a strided view of the stream: memory-bound, as fast as a compiled loop, and
    nothing to compile (numba's 2-D slice assignment took 3 s to compile).
    """
    seq_len = out.shape[1]
    if n_windows <= 0:
        return
    itemsize = stream.itemsize
    view = np.lib.stride_tricks.as_strided(stream[first * stride:], (n_windows, seq_len), (stride * itemsize, itemsize),
                                           writeable=False)
    out[:n_windows] = view


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


@njit(cache=True)
def fill_document_windows(stream, starts, lengths, window_offsets, first, stride, pad, out):
    """out[t] = window `first + t` of all documents' windows (window_offsets: per-document cumulative counts)."""
    seq_len = out.shape[1]
    i = np.searchsorted(window_offsets, first, side="right") - 1
    for t in range(out.shape[0]):
        w = first + t
        while window_offsets[i + 1] <= w:
            i += 1
        s = (w - window_offsets[i]) * stride
        m = min(seq_len, lengths[i] - s)
        out[t, :m] = stream[starts[i] + s:starts[i] + s + m]
        out[t, m:] = pad


@njit(cache=True)
def first_out_of_range(values, limit):
    """Index of the first value < 0 or >= limit, or -1: checks ids from Arrow inputs before the cast to int32."""
    for i in range(values.size):
        v = values[i]
        if v < 0 or v >= limit:
            return i
    return -1


def concat_segments(starts, ends, docs, first_start, n_windows, stride, seq_len, stream_end, whole):
    """Segments of the windows [first_start + w*stride, +seq_len) (clipped at stream_end).

    starts/ends/docs: the non-empty documents covering those windows, as absolute stream spans
    in stream order. Sets whole[i] when some window holds document i entirely.
    Returns (segments per window, segment lengths, segment documents). The binary searches run in
    numpy (numba's searchsorted cost a second of compiling); the fill loop is compiled.
    """
    a = first_start + np.arange(n_windows, dtype=np.int64) * stride
    b = np.minimum(a + seq_len, stream_end)
    lo = np.searchsorted(ends, a, side="right").astype(np.int64)  # the document holding position a
    counts = np.searchsorted(ends, b, side="left").astype(np.int64) - lo + 1
    lengths = np.empty(int(counts.sum()), np.int32)
    seg_docs = np.empty(lengths.size, np.int64)
    _fill_segments(starts, ends, docs, a, b, lo, counts, whole, lengths, seg_docs)
    return counts, lengths, seg_docs


@njit(cache=True)
def _fill_segments(starts, ends, docs, window_starts, window_ends, lo, counts, whole, lengths, seg_docs):
    k = 0
    for w in range(window_starts.size):
        x = window_starts[w]
        b = window_ends[w]
        for i in range(lo[w], lo[w] + counts[w]):
            y = min(ends[i], b)
            lengths[k] = y - x
            seg_docs[k] = docs[i]
            if x == starts[i] and y == ends[i]:
                whole[i] = True
            x = y
            k += 1


@njit(cache=True)
def cut_pieces(doc_lengths, seq_len):
    """Best-fit's pieces: each document cut into seq_len pieces and a shorter last one.

    Returns (first piece of each document [n_docs + 1], piece lengths).
    """
    first = np.empty(doc_lengths.size + 1, np.int64)
    first[0] = 0
    for i in range(doc_lengths.size):
        first[i + 1] = first[i] + (doc_lengths[i] + seq_len - 1) // seq_len
    lengths = np.empty(first[-1], np.int64)
    for i in range(doc_lengths.size):
        n = doc_lengths[i]
        for p in range(first[i], first[i + 1]):
            lengths[p] = min(seq_len, n)
            n -= seq_len
    return first, lengths


@njit(cache=True)
def _first_at_least(tree, size, lo):
    """Smallest leaf index >= lo whose count is > 0 (tree: counts, leaves at [size, 2*size)), or -1."""
    i = lo + size
    while tree[i] == 0:
        while i & 1:  # a right child: go up until we can step right
            i >>= 1
        if i == 0:
            return -1
        i += 1
    while i < size:
        i = 2 * i if tree[2 * i] > 0 else 2 * i + 1
    return i - size


@njit(cache=True)
def _tree_add(tree, size, leaf, delta):
    i = leaf + size
    while i >= 1:
        tree[i] += delta
        i >>= 1


@njit(cache=True)
def best_fit_decreasing(piece_lengths, seq_len):
    """Place pieces into bins of seq_len, longest first (ties in input order), each into the fullest bin it fits.

    Bins with room are kept per remaining capacity, the capacities in a segment tree of counts, so
    finding the best bin is O(log seq_len); among bins of equal room the one that reached it last
    is taken. Returns (placement order, bin of each piece, offset in its bin, tokens used per bin).
    """
    n = piece_lengths.size
    by_length = np.zeros(seq_len + 2, np.int64)  # counting sort, longest first, stable
    for p in range(n):
        by_length[seq_len - piece_lengths[p] + 1] += 1
    for c in range(1, seq_len + 2):
        by_length[c] += by_length[c - 1]
    order = np.empty(n, np.int64)
    for p in range(n):
        k = seq_len - piece_lengths[p]
        order[by_length[k]] = p
        by_length[k] += 1
    size = 1
    while size < seq_len + 1:
        size *= 2
    tree = np.zeros(2 * size, np.int64)
    top = np.full(seq_len + 1, -1, np.int64)  # per remaining capacity: the last bin that reached it
    below = np.empty(n, np.int64)  # the bin under it in that stack
    used = np.zeros(n, np.int64)
    bins = np.empty(n, np.int64)
    offsets = np.empty(n, np.int64)
    n_bins = 0
    for p in order:
        need = piece_lengths[p]
        room = _first_at_least(tree, size, need)
        if room < 0:
            b = n_bins
            n_bins += 1
        else:
            b = top[room]
            top[room] = below[b]
            _tree_add(tree, size, room, -1)
        bins[p] = b
        offsets[p] = used[b]
        used[b] += need
        left = seq_len - used[b]
        if left > 0:
            below[b] = top[left]
            top[left] = b
            _tree_add(tree, size, left, 1)
    return order, bins, offsets, used[:n_bins].copy()


@njit(cache=True)
def bin_segments(order, bins, piece_lengths, piece_docs, n_bins):
    """The boundaries sidecar of best-fit windows: segments per bin, lengths and documents in offset order."""
    counts = np.zeros(n_bins, np.int64)
    for p in range(bins.size):
        counts[bins[p]] += 1
    start = np.zeros(n_bins, np.int64)
    for b in range(1, n_bins):
        start[b] = start[b - 1] + counts[b - 1]
    lengths = np.empty(bins.size, np.int32)
    docs = np.empty(bins.size, np.int64)
    for p in order:  # placement order: offsets increase within a bin
        b = bins[p]
        lengths[start[b]] = piece_lengths[p]
        docs[start[b]] = piece_docs[p]
        start[b] += 1
    return counts, lengths, docs


@njit(cache=True)
def scatter_pieces(tokens, doc_offsets, first_piece, piece_lengths, piece_dst, out):
    """Copy each document's pieces to their places in the flat output (first_piece: this batch's slice)."""
    for i in range(doc_offsets.size - 1):
        src = doc_offsets[i]
        for p in range(first_piece[i], first_piece[i + 1]):
            n = piece_lengths[p]
            out[piece_dst[p]:piece_dst[p] + n] = tokens[src:src + n]
            src += n


@njit(cache=True)
def fill_tails(out, used, pad):
    """Pad every window after its used tokens."""
    for b in range(used.size):
        out[b, used[b]:] = pad
