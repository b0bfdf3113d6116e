"""Plain, obviously-correct versions of what fastpack does, to compare against."""
from __future__ import annotations

import json

import numpy as np

FIELDS = ("input_ids", "ids", "tokens", "token_ids")


def reference_docs(paths, fields=FIELDS):
    """Documents of token JSONL files, with Python's json module."""
    docs = []
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        for line in data.split(b"\n"):
            if line.strip(b" \t\r"):
                obj = json.loads(line)
                docs.append(next(obj[k] for k in fields if k in obj))
    return docs


def reference_layout(docs, seq_len, stride=None, mode="concat", eos=None, bos=None, pad=None, pad_last=False):
    """(windows, the document of every window token: -1 for padding), computed the plain way."""
    stride = stride or seq_len

    def wrapped(d, doc):
        if not doc:
            return []
        return [(t, d) for t in ([bos] if bos is not None else []) + list(doc) + ([eos] if eos is not None else [])]

    def cut(stream, pad_tail):
        out, k = [], 0
        while k * stride + seq_len <= len(stream):
            out.append(stream[k * stride:k * stride + seq_len])
            k += 1
        if pad_tail and k * stride < len(stream):
            rest = stream[k * stride:]
            out.append(rest + [(pad, -1)] * (seq_len - len(rest)))
        return out

    if mode == "concat":
        rows = cut([x for d, doc in enumerate(docs) for x in wrapped(d, doc)], pad_last)
    elif mode == "document":
        rows = [row for d, doc in enumerate(docs) for row in cut(wrapped(d, doc), True)]
    else:
        rows = reference_bestfit([wrapped(d, doc) for d, doc in enumerate(docs)], seq_len, pad)
    tokens = np.array([[t for t, _ in row] for row in rows], dtype=np.int64).reshape(-1, seq_len)
    owners = np.array([[d for _, d in row] for row in rows], dtype=np.int64).reshape(-1, seq_len)
    return tokens, owners


def reference_bestfit(wrapped_docs, seq_len, pad):
    """Best-Fit-Decreasing, literally: pieces longest first (ties in document order), each into the
    bin with the least room that fits it (ties: the bin that reached that room last)."""
    pieces = [doc[k:k + seq_len] for doc in wrapped_docs for k in range(0, len(doc), seq_len)]
    order = sorted(range(len(pieces)), key=lambda p: -len(pieces[p]))
    bins, stamps = [], []
    for time, p in enumerate(order):
        piece = pieces[p]
        fits = [b for b in range(len(bins)) if seq_len - len(bins[b]) >= len(piece)]
        if fits:
            b = min(fits, key=lambda b: (seq_len - len(bins[b]), -stamps[b]))
        else:
            bins.append([])
            stamps.append(0)
            b = len(bins) - 1
        bins[b] = bins[b] + piece
        stamps[b] = time
    return [row + [(pad, -1)] * (seq_len - len(row)) for row in bins]


def reference_segments(owners):
    """The boundaries sidecar of a layout: per window, runs of one document (padding excluded)."""
    counts, lengths, docs = [], [], []
    for row in owners:
        runs = []
        for d in row:
            if d < 0:
                break
            if runs and runs[-1][0] == d:
                runs[-1][1] += 1
            else:
                runs.append([d, 1])
        counts.append(len(runs))
        docs += [d for d, _ in runs]
        lengths += [n for _, n in runs]
    return {"window_offsets": np.cumsum([0] + counts), "segment_lengths": np.array(lengths, np.int64),
            "segment_docs": np.array(docs, np.int64)}


def reference_windows(docs, seq_len, stride=None, mode="concat", eos=None, bos=None, pad=None, pad_last=False):
    return reference_layout(docs, seq_len, stride, mode, eos, bos, pad, pad_last)[0]
