"""Numba byte-level scanner for token JSONL: id arrays parsed straight from bytes into int32.

It behaves like a strict JSON parser on every line it accepts (strings with escapes and UTF-8
checked, nested values, whitespace, key order, strict number syntax) and *refuses* every line
it cannot prove well-formed or that needs a judgement: the caller re-parses those with orjson,
which then gives the exact result or the exact error. So the scanner never decides an error,
it only decides "fast" or "ask orjson".

Every line handed in ends with `\n` (the caller puts one after a last line that lacks it). No
JSON token may contain a raw newline, so every scanning loop stops on it without bounds checks.

Each non-empty document is written with `head`/`tail` free slots around it (1: one slot, 0: none),
where `separators.Separators.fill` later writes the bos/eos ids: the values are already laid out as
the packing stream. Per line the scanner finds the top-level key of highest priority among `names` (the field, or
input_ids > ids > tokens > token_ids), parses its array of non-negative ints, checks each
against `limit`, and skips every other value. Refused: a key with a backslash escape, a
duplicate of the chosen key, ints with a leading zero / sign / fraction / exponent / > 10
digits or >= limit, numbers elsewhere that could overflow a double or a 64-bit int, unpaired \\u
surrogates, nesting deeper than the stack, anything that is not valid JSON.
"""
from __future__ import annotations

import numpy as np

from fastpack.kernel_cache import use_portable_cpu

use_portable_cpu()  # before numba's import: a cache compiled on another machine (the wheel's) loads here
from numba import njit, prange  # noqa: E402

NL = 10
MAX_DEPTH = 64

# scan_block status per part
OK = 0
DOCS_FULL = 1  # the part has more documents than the caller's per-part capacity
FALLBACK_FULL = 2  # ... more refused lines than the capacity


@njit(cache=True, inline="always")
def _skip_ws(buf, j):
    c = buf[j]
    while c == 32 or c == 9 or c == 13:
        j += 1
        c = buf[j]
    return j


@njit(cache=True, inline="always")
def _is_hex(c):
    return (48 <= c <= 57) or (65 <= c <= 70) or (97 <= c <= 102)


@njit(cache=True, inline="always")
def _hex_value(c):
    if c <= 57:
        return c - 48
    if c <= 70:
        return c - 55
    return c - 87


@njit(cache=True, inline="always")
def _cont(c):
    return 0x80 <= c <= 0xBF


@njit(cache=True)
def _utf8_len(buf, j):
    """Length of the valid UTF-8 sequence (RFC 3629) starting at buf[j] >= 0x80, or 0 if invalid."""
    c = buf[j]
    if 0xC2 <= c <= 0xDF:
        return 2 if _cont(buf[j + 1]) else 0
    if 0xE0 <= c <= 0xEF:
        c1 = buf[j + 1]
        if c == 0xE0:
            ok = 0xA0 <= c1 <= 0xBF
        elif c == 0xED:  # no UTF-16 surrogates
            ok = 0x80 <= c1 <= 0x9F
        else:
            ok = _cont(c1)
        return 3 if ok and _cont(buf[j + 2]) else 0
    if 0xF0 <= c <= 0xF4:
        c1 = buf[j + 1]
        if c == 0xF0:
            ok = 0x90 <= c1 <= 0xBF
        elif c == 0xF4:  # nothing above U+10FFFF
            ok = 0x80 <= c1 <= 0x8F
        else:
            ok = _cont(c1)
        return 4 if ok and _cont(buf[j + 2]) and _cont(buf[j + 3]) else 0
    return 0


@njit(cache=True)
def _skip_string(buf, j):
    """buf[j] is the opening quote: index after the closing quote, or -1 (invalid or needs orjson)."""
    j += 1
    while True:
        c = buf[j]
        if c == 34:  # "
            return j + 1
        if c == 92:  # backslash
            e = buf[j + 1]
            if e == 117:  # \uXXXX
                if not (_is_hex(buf[j + 2]) and _is_hex(buf[j + 3]) and _is_hex(buf[j + 4]) and _is_hex(buf[j + 5])):
                    return -1
                hi = _hex_value(buf[j + 2]) * 16 + _hex_value(buf[j + 3])
                if 0xDC <= hi <= 0xDF:  # a low surrogate without its high one
                    return -1
                if 0xD8 <= hi <= 0xDB:  # a high surrogate must be followed by an escaped low one
                    if not (buf[j + 6] == 92 and buf[j + 7] == 117 and (buf[j + 8] == 100 or buf[j + 8] == 68)
                            and _is_hex(buf[j + 9]) and _is_hex(buf[j + 10]) and _is_hex(buf[j + 11])):
                        return -1
                    lo = _hex_value(buf[j + 9])
                    if lo < 12:  # \uDC00-\uDFFF
                        return -1
                    j += 6
                j += 6
            elif e == 34 or e == 92 or e == 47 or e == 98 or e == 102 or e == 110 or e == 114 or e == 116:
                j += 2
            else:
                return -1
        elif c < 32:  # control characters (and the line's newline) are not allowed in strings
            return -1
        elif c < 128:
            j += 1
        else:
            n = _utf8_len(buf, j)
            if n == 0:
                return -1
            j += n


@njit(cache=True)
def _skip_number(buf, j):
    """A JSON number at buf[j]: index after it, or -1 (invalid, or big enough that orjson might refuse it)."""
    if buf[j] == 45:  # -
        j += 1
    c = buf[j]
    if c == 48:  # a leading 0 stands alone
        j += 1
        digits = 1
        if 48 <= buf[j] <= 57:
            return -1
    elif 49 <= c <= 57:
        digits = 0
        while 48 <= buf[j] <= 57:
            j += 1
            digits += 1
    else:
        return -1
    if buf[j] == 46:  # .
        j += 1
        if not (48 <= buf[j] <= 57):
            return -1
        while 48 <= buf[j] <= 57:
            j += 1
            digits += 1
    if buf[j] == 101 or buf[j] == 69:  # e E
        j += 1
        if buf[j] == 43 or buf[j] == 45:
            j += 1
        if not (48 <= buf[j] <= 57):
            return -1
        exp_digits = 0
        while 48 <= buf[j] <= 57:
            j += 1
            exp_digits += 1
        if exp_digits > 2:
            return -1
    if digits > 18:
        return -1
    return j


@njit(cache=True)
def _skip_literal(buf, j):
    c = buf[j]
    if c == 116:  # true
        if buf[j + 1] == 114 and buf[j + 2] == 117 and buf[j + 3] == 101:
            return j + 4
    elif c == 102:  # false
        if buf[j + 1] == 97 and buf[j + 2] == 108 and buf[j + 3] == 115 and buf[j + 4] == 101:
            return j + 5
    elif c == 110:  # null
        if buf[j + 1] == 117 and buf[j + 2] == 108 and buf[j + 3] == 108:
            return j + 4
    return -1


@njit(cache=True)
def _skip_key(buf, j):
    """An object key at buf[j] followed by ':' and whitespace: index of its value, or -1."""
    if buf[j] != 34:
        return -1
    j = _skip_string(buf, j)
    if j < 0:
        return -1
    j = _skip_ws(buf, j)
    if buf[j] != 58:  # :
        return -1
    return _skip_ws(buf, j + 1)


@njit(cache=True)
def _skip_value(buf, j, stack):
    """Any JSON value at buf[j] (nested ones iteratively, `stack` holding the open containers)."""
    depth = 0
    while True:
        c = buf[j]
        if c == 123 or c == 91:  # { [
            if depth == MAX_DEPTH:
                return -1
            stack[depth] = c
            depth += 1
            j = _skip_ws(buf, j + 1)
            if buf[j] == c + 2:  # empty: } is { + 2, ] is [ + 2
                depth -= 1
                j += 1
            else:
                if c == 123:
                    j = _skip_key(buf, j)
                    if j < 0:
                        return -1
                continue
        elif c == 34:
            j = _skip_string(buf, j)
        elif c == 45 or 48 <= c <= 57:
            j = _skip_number(buf, j)
        else:
            j = _skip_literal(buf, j)
        if j < 0:
            return -1
        # after a value: close containers or move to the next element
        while True:
            if depth == 0:
                return j
            j = _skip_ws(buf, j)
            c = buf[j]
            top = stack[depth - 1]
            if c == 44:  # ,
                j = _skip_ws(buf, j + 1)
                if top == 123:
                    j = _skip_key(buf, j)
                    if j < 0:
                        return -1
                break
            if c == top + 2:
                depth -= 1
                j += 1
            else:
                return -1


@njit(cache=True)
def _key_priority(buf, ks, ke, names, name_starts):
    """Index of the name equal to buf[ks:ke] (lower is preferred), or -1."""
    for k in range(name_starts.size - 1):
        a, b = name_starts[k], name_starts[k + 1]
        if b - a != ke - ks:
            continue
        same = True
        for t in range(b - a):
            if buf[ks + t] != names[a + t]:
                same = False
                break
        if same:
            return k
    return -1


@njit(cache=True)
def _parse_ids(buf, j, limit, head, tail, values, v):
    """Ints < limit at buf[j] ('[') appended to values[v:] after `head` free slots, `tail` left after them.

    Returns (index after ']', new v) or (-1, v)."""
    j = _skip_ws(buf, j + 1)
    if buf[j] == 93:  # ] an empty document: no separator slots either
        return j + 1, v
    if head > 0:
        v += 1
    while True:
        c = buf[j]
        if c == 48:
            x = 0
            j += 1
        elif 49 <= c <= 57:
            x = c - 48
            j += 1
            n = 1
            while True:
                c = buf[j]
                if not (48 <= c <= 57):
                    break
                x = x * 10 + (c - 48)
                j += 1
                n += 1
                if n > 10:
                    return -1, v
        else:
            return -1, v
        c = buf[j]
        if c == 46 or c == 101 or c == 69 or (48 <= c <= 57) or x >= limit:
            return -1, v  # fraction, exponent, leading zero, out of range: orjson tells what it is
        values[v] = x
        v += 1
        j = _skip_ws(buf, j)
        c = buf[j]
        if c == 44:
            j = _skip_ws(buf, j + 1)
        elif c == 93:
            if tail > 0:
                v += 1
            return j + 1, v
        else:
            return -1, v


@njit(cache=True)
def _scan_line(buf, j, names, name_starts, limit, head, tail, values, v, stack):
    """One line starting at buf[j].

    Returns (status, index of the line's newline or -1, new v):
    status 1 document (ids at values[v0:v]), 0 blank line, -1 refused (v unchanged).
    """
    v0 = v
    j = _skip_ws(buf, j)
    if buf[j] == NL:
        return 0, j, v
    if buf[j] != 123:
        return -1, -1, v0
    j = _skip_ws(buf, j + 1)
    best = name_starts.size
    if buf[j] == 125:  # {} has no ids
        return -1, -1, v0
    while True:
        if buf[j] != 34:
            return -1, -1, v0
        ks = j + 1
        j = _skip_string(buf, j)
        if j < 0:
            return -1, -1, v0
        ke = j - 1
        for t in range(ks, ke):
            if buf[t] == 92:  # an escaped key might spell the field: orjson decides
                return -1, -1, v0
        j = _skip_ws(buf, j)
        if buf[j] != 58:
            return -1, -1, v0
        j = _skip_ws(buf, j + 1)
        p = _key_priority(buf, ks, ke, names, name_starts)
        if p == best:  # duplicate key: JSON says the last wins, orjson agrees; rare enough to hand over
            return -1, -1, v0
        if p >= 0 and p < best:
            if buf[j] != 91:
                return -1, -1, v0
            j, v = _parse_ids(buf, j, limit, head, tail, values, v0)
            if j < 0:
                return -1, -1, v0
            best = p
        else:
            j = _skip_value(buf, j, stack)
            if j < 0:
                return -1, -1, v0
        j = _skip_ws(buf, j)
        c = buf[j]
        if c == 44:
            j = _skip_ws(buf, j + 1)
        elif c == 125:
            break
        else:
            return -1, -1, v0
    j = _skip_ws(buf, j + 1)
    if buf[j] != NL or best == name_starts.size:
        return -1, -1, v0
    return 1, j, v


@njit(cache=True)
def _next_newline(buf, j):
    while buf[j] != NL:
        j += 1
    return j


@njit(cache=True)
def _scan_part(buf, start, end, names, name_starts, limit, head, tail, values, v0, doc_ends, doc_lines, d0, d_cap,
               fb_lines, fb_starts, fb_ends, fb_docs, f0, f_cap, stack):
    """Scan the lines of buf[start:end] (end just after a newline). Returns (status, lines, docs, values, refused)."""
    v = v0
    d = 0
    f = 0
    line = 0
    j = start
    while j < end:
        status, e, v_new = _scan_line(buf, j, names, name_starts, limit, head, tail, values, v, stack)
        if status == 1:
            if d == d_cap:
                return DOCS_FULL, line, d, v - v0, f
            v = v_new
            doc_ends[d0 + d] = v - v0
            doc_lines[d0 + d] = line
            d += 1
        elif status == -1:
            if f == f_cap:
                return FALLBACK_FULL, line, d, v - v0, f
            e = _next_newline(buf, j)
            fb_lines[f0 + f] = line
            fb_starts[f0 + f] = j
            fb_ends[f0 + f] = e
            fb_docs[f0 + f] = d
            f += 1
        j = e + 1
        line += 1
    return OK, line, d, v - v0, f


@njit(cache=True, parallel=True)
def scan_block(buf, part_bounds, names, name_starts, limit, head, tail, values, value_cap, doc_ends, doc_lines, doc_cap,
               fb_lines, fb_starts, fb_ends, fb_docs, fb_cap, results):
    """Scan the parts buf[part_bounds[p]:part_bounds[p+1]] in parallel, each into its own slices.

    Part p writes values[p*value_cap:] (value_cap >= part bytes / 2 always suffices, separator
    slots included), doc_ends/doc_lines[p*doc_cap:] (relative to its slices),
    refused lines to fb_*[p*fb_cap:]; results[p] = (status, lines, docs, values, refused).
    """
    n_parts = part_bounds.size - 1
    for p in prange(n_parts):
        stack = np.empty(MAX_DEPTH, np.uint8)
        status, lines, docs, nvals, refused = _scan_part(
            buf, part_bounds[p], part_bounds[p + 1], names, name_starts, limit, head, tail,
            values, p * value_cap, doc_ends, doc_lines, p * doc_cap, doc_cap,
            fb_lines, fb_starts, fb_ends, fb_docs, p * fb_cap, fb_cap, stack)
        results[p, 0] = status
        results[p, 1] = lines
        results[p, 2] = docs
        results[p, 3] = nvals
        results[p, 4] = refused


@njit(cache=True)
def split_points(buf, n, n_parts):
    """Part boundaries of buf[:n] (n just after a newline), each cut moved to just after a newline."""
    bounds = np.empty(n_parts + 1, np.int64)
    bounds[0] = 0
    for p in range(1, n_parts):
        j = max(bounds[p - 1], (n * p) // n_parts)
        while 0 < j < n and buf[j - 1] != NL:
            j += 1
        bounds[p] = j
    bounds[n_parts] = n
    return bounds


@njit(cache=True)
def last_newline(buf, n):
    """Index of the last newline in buf[:n], or -1."""
    j = n - 1
    while j >= 0 and buf[j] != NL:
        j -= 1
    return j

