"""The peers fastpack is measured against, each a plain, faithful version of what people write.

Every baseline returns the same [n_windows, seq_len] int32 windows as fastpack's concat mode
(eos after each document, last partial window dropped), so the benchmarks check equality too.
"""
from __future__ import annotations

import json

import numpy as np
import orjson

FIELD = "input_ids"


def windows_of(stream: np.ndarray, seq_len: int, stride: int) -> np.ndarray:
    if stream.size < seq_len:
        return np.empty((0, seq_len), np.int32)
    view = np.lib.stride_tricks.sliding_window_view(stream, seq_len)[::stride]
    return np.ascontiguousarray(view)


def naive_json_lists(path, seq_len: int, stride: int, eos_id: int) -> np.ndarray:
    """json + Python lists: the hand-written `pack_sequences` of many training scripts."""
    stream: list[int] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                stream.extend(json.loads(line)[FIELD])
                stream.append(eos_id)
    out = []
    for start in range(0, len(stream) - seq_len + 1, stride):
        out.append(stream[start:start + seq_len])
    return np.array(out, dtype=np.int32).reshape(-1, seq_len)


def orjson_numpy(path, seq_len: int, stride: int, eos_id: int) -> np.ndarray:
    """orjson per line + numpy concatenate + windows: nanoGPT's prepare style, the fastest peer."""
    eos = np.array([eos_id], np.int32)
    parts = []
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                parts.append(np.array(orjson.loads(line)[FIELD], dtype=np.int32))
                parts.append(eos)
    stream = np.concatenate(parts) if parts else np.empty(0, np.int32)
    return windows_of(stream, seq_len, stride)


def pyarrow_json(path, seq_len: int, stride: int, eos_id: int) -> np.ndarray:
    """pyarrow.json.read_json (ids as list<int32>, other fields ignored, its thread pool) + numpy windows."""
    import pyarrow as pa
    import pyarrow.json as pj

    schema = pa.schema([(FIELD, pa.list_(pa.int32()))])
    table = pj.read_json(path, parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"))
    parts = []
    for chunk in table.column(FIELD).chunks:
        offsets = chunk.offsets.to_numpy()
        values = chunk.values.to_numpy()[offsets[0]:offsets[-1]]
        offsets = offsets - offsets[0]
        ends = offsets[1:][np.diff(offsets) > 0]  # an empty document gets no eos, as in fastpack
        parts.append(np.insert(values, ends, np.int32(eos_id)))
    stream = np.concatenate(parts) if parts else np.empty(0, np.int32)
    return windows_of(stream, seq_len, stride)


BASELINES = {"naive_json_lists": naive_json_lists, "orjson_numpy": orjson_numpy, "pyarrow_json": pyarrow_json}
