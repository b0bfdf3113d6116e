"""The numba scanner against orjson: it may refuse a line (orjson then decides), never disagree."""
import json

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastpack import jsonscan
from fastpack.errors import UserError
from fastpack.readers import DEFAULT_FIELDS, BadLines, IdLimits, JsonlReader

INVALID = "invalid"
LIMIT = 2**31


def scan_one(line: bytes, limit: int = LIMIT, fields=DEFAULT_FIELDS):
    """The fast path alone on one line: its ids, None when refused, "blank" for a blank line."""
    buf = np.frombuffer(line + b"\n", np.uint8).copy()
    names = np.frombuffer(b"".join(f.encode() for f in fields), np.uint8).copy()
    starts = np.cumsum([0] + [len(f) for f in fields]).astype(np.int64)
    values = np.zeros(buf.size, np.int32)
    i64 = [np.zeros(2, np.int64) for _ in range(6)]
    results = np.zeros((1, 5), np.int64)
    jsonscan.scan_block(buf, np.array([0, buf.size], np.int64), names, starts, limit, -1, -1, values, buf.size,
                        i64[0], i64[1], 2, *i64[2:], 2, results)
    assert results[0, 0] == jsonscan.OK and results[0, 1] == 1
    if results[0, 2]:
        return values[: results[0, 3]].tolist()
    return None if results[0, 4] else "blank"


def orjson_reference(line: bytes, limit: int = LIMIT):
    """What a strict JSON parser says the line's ids are."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return INVALID
    if not isinstance(obj, dict):
        return INVALID
    name = next((f for f in DEFAULT_FIELDS if f in obj), None)
    ids = obj.get(name)
    if not isinstance(ids, list) or not all(type(x) is int and 0 <= x < limit for x in ids):
        return INVALID
    return ids


def reader_result(tmp_path, line: bytes, limit: int = LIMIT):
    """The whole reader (fast path + orjson fallback) on a one-line file: ids or INVALID."""
    path = tmp_path / "one.jsonl"
    path.write_bytes(line + b"\n")
    reader = JsonlReader(path, fields=DEFAULT_FIELDS, limits=IdLimits(vocab_size=limit if limit < LIMIT else None),
                         bad=BadLines())
    try:
        batches = [(b.values.copy(), b.offsets.copy()) for b in reader]
    except UserError:
        return INVALID
    docs = [v[o[i]:o[i + 1]].tolist() for v, o in batches for i in range(o.size - 1)]
    assert len(docs) == 1
    return docs[0]


def check_line(tmp_path, line: bytes, limit: int = LIMIT):
    want = orjson_reference(line, limit)
    fast = scan_one(line, limit)
    if fast is not None:
        assert fast == want, line
    assert reader_result(tmp_path, line, limit) == want, line


TRICKY = [
    b'{"input_ids": [1, 2]}',
    b'{"input_ids": [01]}', b'{"input_ids": [-0]}', b'{"input_ids": [-1]}', b'{"input_ids": [1.0]}',
    b'{"input_ids": [1e2]}', b'{"input_ids": [1E2]}', b'{"input_ids": ["1"]}', b'{"input_ids": [[1]]}',
    b'{"input_ids": [true]}', b'{"input_ids": [null]}', b'{"input_ids": [2147483647]}',
    b'{"input_ids": [2147483648]}', b'{"input_ids": [99999999999999999999999]}', b'{"input_ids": [1,]}',
    b'{"input_ids": [,1]}', b'{"input_ids": [1 2]}', b'{"input_ids": 5}', b'{"input_ids": "[1]"}',
    b'{"input_ids": [1], }', b'{"input_ids": [1]} x', b'{"input_ids": [1]}}', b'{"input_ids": [1]',
    b'{"input_ids": [1', b'{"input\\u005fids": [3]}', b'{"input_ids": [1], "input_ids": [2]}',
    b'{"ids": [1], "ids": [2], "input_ids": [3]}', b'{"x": 123456789012345678901234567890, "input_ids": [4]}',
    b'{"x": 1e400, "input_ids": [4]}', b'{"x": 1e99, "input_ids": [4]}', b'{"x": -0.0e-5, "input_ids": [4]}',
    b'{"x": "\\ud800", "input_ids": [4]}', b'{"x": "\\ud83d\\ude00", "input_ids": [4]}', b'{"x": "\\udc00", "input_ids": [5]}',
    b'{"x": "\xed\xa0\x80", "input_ids": [4]}', b'{"x": "\xc0\xaf", "input_ids": [4]}', b'{"x": "\xff", "input_ids": [4]}',
    b'{"x": "\xf4\x90\x80\x80", "input_ids": [4]}', b'{"x": "\xf0\x9f\x98\x80", "input_ids": [4]}',
    b'{"x": "a\x01b", "input_ids": [4]}', b'{"x": "a\x7fb", "input_ids": [4]}', b'{"x": "\\q", "input_ids": [4]}',
    b'{"x": "\\u12g4", "input_ids": [4]}', b'{"x": NaN, "input_ids": [4]}', b'{"x": tru, "input_ids": [4]}',
    b'{"x": [1, {"y": [true, false, null, "s", -1.5e-3]}], "input_ids": [4]}', b'{"x": {}, "input_ids": [4], "y": []}',
    b'\x0c{"input_ids": [4]}', b'{"input_ids":\r[4]\r}\r', b'{"input_ids"\t:\t[ 4 ,\t5 ]\t}', b'   ', b'\r',
    b'[1, 2]', b'"input_ids"', b'{}', b'{"text": "no ids"}', b'{"input_ids": []}', b'{"a": "\\"input_ids\\": [1]"}',
    b'{"x": ' + b"[" * 70 + b"]" * 70 + b', "input_ids": [4]}', b'{"x": ' + b"[" * 60 + b"]" * 60 + b', "input_ids": [4]}',
    b'{"x": 00, "input_ids": [4]}', b'{"x": 1., "input_ids": [4]}', b'{"x": .5, "input_ids": [4]}',
    b'{"x": +1, "input_ids": [4]}', b'{"x": -, "input_ids": [4]}', b'{"x": 1e+, "input_ids": [4]}',
    b'{"tokens": [7], "input_ids": [8]}', b'{"token_ids": [7], "tokens": [8]}', b'{"input_ids": [1], "ids": "x"}',
]


@pytest.mark.parametrize("line", TRICKY)
def test_tricky_lines(tmp_path, line):
    if line.strip(b" \t\r") == b"":
        assert scan_one(line) == "blank"
        return
    check_line(tmp_path, line)


def test_vocab_limit(tmp_path):
    check_line(tmp_path, b'{"input_ids": [1, 99]}', limit=100)
    check_line(tmp_path, b'{"input_ids": [1, 100]}', limit=100)


json_scalars = st.none() | st.booleans() | st.integers(-(10**25), 10**25) | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(json_scalars, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=12)
id_lists = st.lists(st.integers(0, LIMIT - 1) | st.integers(LIMIT - 3, LIMIT + 3), max_size=12)
field_values = id_lists | json_values | st.lists(st.integers(-3, 3) | st.floats() | st.booleans(), max_size=5)
keys = st.sampled_from(["input_ids", "ids", "tokens", "token_ids", "text", "id", "input_id", ""]) | st.text(max_size=6)


@st.composite
def lines(draw):
    obj = draw(st.dictionaries(keys, field_values, max_size=5))
    if draw(st.booleans()):
        obj[draw(st.sampled_from(DEFAULT_FIELDS))] = draw(id_lists)
    style = draw(st.sampled_from(["compact", "spaced", "ascii", "weird"]))
    if style == "compact":
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    elif style == "spaced":
        text = json.dumps(obj, ensure_ascii=False, allow_nan=True)
    elif style == "ascii":
        text = json.dumps(obj, allow_nan=True)
    else:
        text = json.dumps(obj, separators=(" , ", " :\t"), ensure_ascii=False, allow_nan=True)
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):  # mutate a byte: most results are invalid, some are tricky-valid
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        b = bytes([draw(st.sampled_from(b'{}[]",:0123456789-.eE \t\r\\tfnu\x00\x1f\x80\xc3\xe2\xf0\xff'))])
        data = {"replace": data[:i] + b + data[i + 1:], "insert": data[:i] + b + data[i:], "delete": data[:i] + data[i + 1:]}[op]
    return data.replace(b"\n", b" ")


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(line=lines())
def test_fuzzed_lines_agree_with_orjson(tmp_path, line):
    if line.strip(b" \t\r") == b"":
        assert scan_one(line) == "blank"
        return
    check_line(tmp_path, line)


@settings(max_examples=300, deadline=None)
@given(ids=st.lists(st.integers(0, LIMIT - 1), max_size=50), text=st.text())
def test_well_formed_lines_take_the_fast_path(ids, text):
    """Ordinary lines must not fall back: that is where the speed comes from."""
    for line in (orjson.dumps({"text": text, "input_ids": ids}), json.dumps({"input_ids": ids, "t": text}).encode()):
        assert scan_one(line) == ids
