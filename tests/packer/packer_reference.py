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


def reference_windows(docs, seq_len, stride=None, mode="concat", eos=None, bos=None, pad=None, pad_last=False):
    stride = stride or seq_len

    def wrapped(doc):
        if not doc:
            return []
        return ([bos] if bos is not None else []) + list(doc) + ([eos] if eos is not None else [])

    def cut(stream, pad_tail):
        out, k = [], 0
        while k * stride + seq_len <= len(stream):
            out.append(stream[k * stride:k * stride + seq_len])
            k += 1
        if pad_tail and k * stride < len(stream):
            rest = stream[k * stride:]
            out.append(rest + [pad] * (seq_len - len(rest)))
        return out

    if mode == "concat":
        rows = cut([t for d in docs for t in wrapped(d)], pad_last)
    else:
        rows = [row for d in docs for row in cut(wrapped(d), True)]
    return np.array(rows, dtype=np.int64).reshape(-1, seq_len)
