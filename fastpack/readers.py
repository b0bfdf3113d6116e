"""Readers: token files -> batches of documents as flat buffers (int32 `values` + int64 `offsets`).

JSONL is read in blocks of whole lines into one reused byte buffer and parsed by the numba
scanner (`jsonscan`), its parts in parallel; lines it refuses are re-parsed with orjson, which
either gives the ids or the exact error, reported as `path:line: problem`. Parquet and Arrow IPC
files (what HF `datasets` writes) are read with pyarrow, a list-of-int column at a time; Megatron-LM
`.bin` + `.idx` pairs through a memory map.
Memory is bounded by the block size (or the longest line), never by the file size.

One class per input kind (`READERS`, picked by suffix in `reader_for`); adding a kind is one class
with the same constructor, `__iter__`, `shard_units` and `input_bytes`. Readers lay documents out
with free slots for the separators; `read_stream`, the read stage, has the ids written into them.
"""
from __future__ import annotations

import os

# numba's OpenMP workers otherwise spin between parallel regions; on a 2-core machine that steals
# the core the main thread needs for reading and writing (measured: 10-20% of a whole pack).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import orjson

from fastpack import jsonscan
from fastpack.buffers import Buffers
from fastpack.errors import UserError
from fastpack.separators import Separators
from fastpack.spec import DEFAULT_FIELDS, IdLimits

BLOCK_BYTES = 16 << 20
MIN_PART_BYTES = 1 << 20  # below this a part is not worth a thread
MAX_PARTS: int | None = None  # parts per block; None: one per numba thread
_BOM = b"\xef\xbb\xbf"


@dataclass
class TokenBatch:
    """Documents i = values[offsets[i]:offsets[i+1]]; `nbytes` of input consumed, `skipped` bad lines."""

    values: np.ndarray
    offsets: np.ndarray
    nbytes: int = 0
    skipped: int = 0

    @property
    def n_docs(self) -> int:
        return self.offsets.size - 1

    def to_arrow(self):
        """The batch as a `pyarrow.LargeListArray` sharing this batch's memory (no copy)."""
        import pyarrow as pa

        return pa.LargeListArray.from_arrays(pa.array(self.offsets), pa.array(self.values))


@dataclass
class BadLines:
    """`--on-bad-line`: raise on the first bad line, or count them and keep a few for the report."""

    skip: bool = False
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def report(self, where: str, problem: str) -> None:
        if not self.skip:
            raise UserError(f"{where}: {problem}")
        self.count += 1
        if len(self.examples) < 5:
            self.examples.append(f"{where}: {problem}")


def parse_line_with_orjson(line: bytes, fields: Sequence[str], limits: IdLimits) -> np.ndarray | str:
    """The slow, exact path for one line: its ids as int32, or the problem as one phrase."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 (byte {exc.start + 1} of the line)"
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return f"invalid JSON ({exc})"
    if not isinstance(obj, dict):
        return f"expected a JSON object, found {_describe(obj)}"
    name = next((f for f in fields if f in obj), None)
    if name is None:
        also = f" (also looked for {', '.join(fields[1:])})" if len(fields) > 1 else ""
        return f"missing field {fields[0]!r}{also}"
    ids = obj[name]
    if not isinstance(ids, list):
        return f"field {name!r} must be a list of token ids, found {_describe(ids)}"
    for k, x in enumerate(ids):
        if type(x) is not int:
            return f"{name}[{k}] is {_describe(x)}, expected a non-negative integer"
        problem = limits.problem(x)
        if problem:
            return f"{name}[{k}] = {problem}"
    return np.array(ids, dtype=np.int64).astype(np.int32)


def _describe(x) -> str:
    if isinstance(x, bool) or x is None:
        return f"{orjson.dumps(x).decode()}"
    if isinstance(x, (int, float)):
        return f"a {type(x).__name__} ({x!r})"
    if isinstance(x, str):
        return f"a string ({x[:20]!r})"
    return {list: "a list", dict: "an object"}.get(type(x), type(x).__name__)


class TokenReader:
    """What every reader provides (the input kinds are in READERS): `handles(path)`, `shard_units(path, fields)`,
    and an iterator of TokenBatches in stream layout over [start, end) of those units."""

    kind: str

    @staticmethod
    def input_bytes(path: Path, start: int, end: int | None) -> int:
        """Bytes of input a part stands for (progress): by default the whole file."""
        return path.stat().st_size

    @classmethod
    def for_part(cls, part, *, block_bytes: int = 0, **common) -> "TokenReader":
        """A reader of one part of the inputs (`block_bytes` is JSONL's)."""
        return cls(part.path, start=part.start, end=part.end, **common)


class JsonlReader(TokenReader):
    """Token JSONL -> batches of documents. Reads the lines whose first byte is in [start, end).

    Batches are views of reused buffers, valid until the next one is taken: one per parallel
    part of a block, so nothing is copied between the scanner and the windower.
    """

    kind = "JSONL"

    @classmethod
    def handles(cls, path: Path) -> bool:
        return True  # whatever no other reader claims

    @staticmethod
    def shard_units(path: Path, fields: Sequence[str]) -> int:
        """A shard is a byte range."""
        return path.stat().st_size

    @staticmethod
    def input_bytes(path: Path, start: int, end: int | None) -> int:
        return path.stat().st_size - start if end is None else end - start

    @classmethod
    def for_part(cls, part, *, block_bytes: int = BLOCK_BYTES, **common) -> "JsonlReader":
        return cls(part.path, start=part.start, end=part.end, block_bytes=block_bytes, **common)

    def __init__(self, path: str | os.PathLike, *, fields: Sequence[str], limits: IdLimits, bad: BadLines,
                 separators: Separators = Separators(), block_bytes: int = BLOCK_BYTES, start: int = 0,
                 end: int | None = None, n_parts: int | None = None) -> None:
        self.path = Path(path)
        self.fields = tuple(fields)
        self.limits, self.bad, self.separators = limits, bad, separators
        self.block_bytes = max(int(block_bytes), 64)
        self.start, self.end = start, end
        self.n_parts = n_parts
        names = [f.encode() for f in self.fields]
        self._names = np.frombuffer(b"".join(names), np.uint8).copy()
        self._name_starts = np.cumsum([0] + [len(n) for n in names]).astype(np.int64)
        self._scratch = Buffers()
        self._first_line: int | None = 1 if start == 0 else None

    def __iter__(self) -> Iterator[TokenBatch]:
        lines_before = 0
        for buf, n, consumed, no_newline in self._line_blocks():
            n_lines = yield from self._parse_block(buf, n, lines_before, consumed, no_newline)
            lines_before += n_lines
    # -- bytes -> blocks of whole lines -------------------------------------------------------
    def _line_blocks(self):
        """Yield (buf, n, input bytes in the block, its last line lacked a newline); buf[:n] is whole lines."""
        size = self.path.stat().st_size
        limit = size if self.end is None else min(self.end, size)
        buf = self._scratch.get("bytes", self.block_bytes + 1, np.uint8)  # +1: room for a sentinel newline
        have = 0
        with open(self.path, "rb") as f:
            pos = self._seek_first_line(f)
            if pos == 0 and f.read(3) != _BOM:  # a UTF-8 byte order mark at the start is skipped
                f.seek(0)
            pos = f.tell()
            while True:
                if have == buf.size - 1:  # a line longer than the buffer: grow it
                    buf = self._scratch.get("bytes", 2 * buf.size, np.uint8, keep=have)
                want = min(buf.size - 1 - have, max(limit - pos, 0))
                got = f.readinto(memoryview(buf)[have:have + want]) if want else 0
                pos += got
                n = have + got
                done = pos >= limit or got < want
                if done and n and buf[n - 1] != jsonscan.NL:
                    rest = f.readline()  # finish the line that straddles a shard's end
                    if rest:
                        buf = self._scratch.get("bytes", max(buf.size, n + len(rest) + 1), np.uint8, keep=n)
                        buf[n:n + len(rest)] = np.frombuffer(rest, np.uint8)
                        n += len(rest)
                cut = n if done else jsonscan.last_newline(buf, n) + 1
                if cut:
                    no_newline = buf[cut - 1] != jsonscan.NL
                    if no_newline:  # only the very last line: give it the newline every line ends with
                        buf[cut] = jsonscan.NL
                    yield buf, cut + no_newline, cut, bool(no_newline)
                if done:
                    return
                have = n - cut
                buf[:have] = buf[cut:n].copy()

    def _seek_first_line(self, f) -> int:
        """Position f at the first line starting at or after self.start; return that position."""
        if self.start <= 0:
            f.seek(0)
            return 0
        f.seek(self.start - 1)
        if f.read(1) != b"\n":
            f.readline()
        return f.tell()

    def _line_number(self, lines_before_block: int, index_in_block: int) -> int:
        if self._first_line is None:  # a shard not starting at byte 0: count the lines before it once
            with open(self.path, "rb") as f:
                self._seek_first_line(f)
                first = f.tell()
                f.seek(0)
                newlines, left = 0, first
                while left > 0:
                    chunk = f.read(min(left, 1 << 24))
                    newlines += chunk.count(b"\n")
                    left -= len(chunk)
            self._first_line = newlines + 1
        return self._first_line + lines_before_block + index_in_block

    # -- block -> documents -------------------------------------------------------------------
    def _parse_block(self, buf, n, line0, consumed, no_newline):
        """Yield the block's documents (one batch per part); return its number of lines."""
        from numba import get_num_threads

        n_parts = self.n_parts or max(1, min(MAX_PARTS or get_num_threads(), n // MIN_PART_BYTES))
        bounds = jsonscan.split_points(buf, n, n_parts)
        max_part = int(np.diff(bounds).max())
        caps = (max_part // 2 + 1, max_part // 8 + 16, max_part // 64 + 16)
        results = np.zeros((n_parts, 5), np.int64)
        sep = self.separators
        while True:
            value_cap, doc_cap, fb_cap = caps
            s = self._scratch
            values = s.get("values", n_parts * value_cap, np.int32)
            doc_ends = s.get("doc_ends", n_parts * doc_cap, np.int64)
            doc_lines = s.get("doc_lines", n_parts * doc_cap, np.int64)
            fb = [s.get(k, n_parts * fb_cap, np.int64) for k in ("fb_lines", "fb_starts", "fb_ends", "fb_docs")]
            jsonscan.scan_block(buf, bounds, self._names, self._name_starts, self.limits.limit, sep.head, sep.tail,
                                values, value_cap, doc_ends, doc_lines, doc_cap, *fb, fb_cap, results)
            if (results[:, 0] == jsonscan.OK).all():
                break
            caps = (value_cap, max_part // 2 + 2, max_part // 2 + 2)  # pathological: many tiny lines
        part_lines = np.concatenate([[0], np.cumsum(results[:, 1])])
        if results[:, 4].sum():
            yield self._with_fallback(buf, values, value_cap, doc_ends, doc_cap, fb, fb_cap, results, line0,
                                      part_lines, consumed, no_newline)
            return int(part_lines[-1])
        for p in range(n_parts):
            nd, nv = int(results[p, 2]), int(results[p, 3])
            offsets = self._scratch.get(f"offsets{p}", nd + 1, np.int64)[: nd + 1]
            offsets[0] = 0
            offsets[1:] = doc_ends[p * doc_cap:p * doc_cap + nd]
            yield TokenBatch(values[p * value_cap:p * value_cap + nv], offsets,
                             nbytes=consumed if p == n_parts - 1 else 0)
        return int(part_lines[-1])

    def _with_fallback(self, buf, values, value_cap, doc_ends, doc_cap, fb, fb_cap, results,
                       line0, part_lines, consumed, no_newline) -> TokenBatch:
        """Rare path: splice the orjson-parsed refused lines between the scanner's documents."""
        fb_lines, fb_starts, fb_ends, fb_docs = fb
        pieces: list[np.ndarray] = []
        lengths: list[np.ndarray] = []
        skipped_before = self.bad.count
        last_line_index = int(part_lines[-1]) - 1
        for p in range(results.shape[0]):
            nd, nv = int(results[p, 2]), int(results[p, 3])
            ends = doc_ends[p * doc_cap:p * doc_cap + nd]
            starts = np.concatenate([[0], ends[:-1]]) if nd else ends
            vals = values[p * value_cap:p * value_cap + nv]
            done = 0
            for f in range(p * fb_cap, p * fb_cap + int(results[p, 4])):
                k = int(fb_docs[f])
                if k > done:
                    pieces.append(vals[starts[done]:ends[k - 1]])
                    lengths.append(ends[done:k] - starts[done:k])
                done = k
                index = int(part_lines[p] + fb_lines[f])
                ids = parse_line_with_orjson(buf[fb_starts[f]:fb_ends[f]].tobytes(), self.fields, self.limits)
                if isinstance(ids, str):
                    if no_newline and index == last_line_index:
                        ids += " (the last line has no newline: truncated file?)"
                    self.bad.report(f"{self.path}:{self._line_number(line0, index)}", ids)
                    continue
                ids, _ = self.separators.spread(ids, np.array([0, ids.size], np.int64))
                pieces.append(ids)
                lengths.append(np.array([ids.size], np.int64))
            if nd > done:
                pieces.append(vals[starts[done]:ends[nd - 1]])
                lengths.append(ends[done:nd] - starts[done:nd])
        out_vals = np.concatenate(pieces).astype(np.int32, copy=False) if pieces else np.empty(0, np.int32)
        all_lengths = np.concatenate(lengths) if lengths else np.empty(0, np.int64)
        offsets = np.zeros(all_lengths.size + 1, np.int64)
        np.cumsum(all_lengths, out=offsets[1:])
        return TokenBatch(out_vals, offsets, nbytes=consumed, skipped=self.bad.count - skipped_before)


class ArrowReader(TokenReader):
    """Parquet / Arrow IPC (file or stream) with a list-of-int column -> TokenBatch per record batch.

    Reads rows [start, end); the last batch of the file carries its size in `nbytes` (progress).
    """

    kind = "Parquet/Arrow"
    suffixes = (".parquet", ".arrow", ".feather", ".ipc")

    def __init__(self, path: str | os.PathLike, *, fields: Sequence[str], limits: IdLimits | None,
                 bad: BadLines | None, separators: Separators = Separators(), start: int = 0,
                 end: int | None = None, batch_rows: int = 4096) -> None:
        self.path = Path(path)
        self.fields, self.limits, self.bad, self.separators = tuple(fields), limits, bad, separators
        self.start, self.end = start, end
        self.batch_rows = batch_rows

    @classmethod
    def handles(cls, path: Path) -> bool:
        return path.suffix.lower() in cls.suffixes

    @classmethod
    def shard_units(cls, path: Path, fields: Sequence[str]) -> int:
        """A shard is a row range."""
        return cls(path, fields=fields, limits=None, bad=None).num_rows()

    def num_rows(self) -> int:
        import pyarrow.parquet as pq

        if self.path.suffix == ".parquet":
            return pq.ParquetFile(self.path).metadata.num_rows
        return sum(rb.num_rows for rb in self._record_batches())

    def __iter__(self) -> Iterator[TokenBatch]:
        row, last = 0, None
        lo, hi = self.start, self.end
        for rb in self._record_batches():
            n = rb.num_rows
            a, b = max(lo - row, 0), n if hi is None else min(hi - row, n)
            if a < b:
                if last is not None:
                    yield last
                last = self._to_batch(rb.slice(a, b - a), row + a)
            row += n
            if hi is not None and row >= hi:
                break
        if last is not None:
            last.nbytes = self.path.stat().st_size
            yield last

    def _record_batches(self):
        """Record batches holding just the ids column."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            if self.path.suffix == ".parquet":
                pf = pq.ParquetFile(self.path)
                yield from pf.iter_batches(batch_size=self.batch_rows, columns=[self._column(pf.schema_arrow.names)])
                return
            with pa.memory_map(str(self.path)) as source:
                try:
                    reader = pa.ipc.open_file(source)
                    batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
                except pa.ArrowInvalid:  # HF datasets writes the stream format
                    source.seek(0)
                    reader = batches = pa.ipc.open_stream(source)
                name = self._column(reader.schema.names)
                for rb in batches:
                    yield rb.select([name])
        except (pa.ArrowInvalid, OSError) as exc:
            raise UserError(f"{self.path}: cannot read as {self.path.suffix[1:]} ({exc})") from None

    def _column(self, names: Sequence[str]) -> str:
        name = next((f for f in self.fields if f in names), None)
        if name is None:
            raise UserError(f"{self.path}: no column {' or '.join(map(repr, self.fields))} (columns: {', '.join(names)})")
        return name

    def _to_batch(self, rb, first_row: int) -> TokenBatch:
        import pyarrow as pa

        col = rb.column(0)
        name = rb.schema.names[0]
        if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)) or not pa.types.is_integer(col.type.value_type):
            raise UserError(f"{self.path}: column {name!r} must be a list of integers, found {col.type}")
        offsets = col.offsets.to_numpy().astype(np.int64)
        values = col.values.slice(offsets[0], offsets[-1] - offsets[0])
        offsets -= offsets[0]
        vals = values.to_numpy(zero_copy_only=False)  # float with NaN where null: those rows are rejected
        null = values.is_null().to_numpy(zero_copy_only=False) if values.null_count else None
        null_rows = np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False)) if col.null_count else ()
        return checked_batch(vals, offsets, self.limits, self.bad, self.separators, name=name,
                             where=lambda row: f"{self.path}: row {first_row + row + 1}", null=null,
                             null_docs=null_rows)


class MegatronReader(TokenReader):
    """Megatron-LM's indexed dataset: `name.bin` (the tokens) + `name.idx` (sizes, pointers, documents).

    The index layout (MMIDIDX, version 1): magic, <Q version, <B dtype code, <Q sequence count,
    <Q document count; int32 sequence lengths, int64 byte pointers into the .bin, int64 document
    starts (in sequences, the last one the count). A document is its run of sequences. Reads
    documents [start, end), a memory map at a time slice; shards split documents.
    """

    kind = "Megatron .bin/.idx"
    MAGIC = b"MMIDIDX\x00\x00"
    DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 8: np.uint16}  # integer codes
    _BATCH_TOKENS = 1 << 22

    def __init__(self, path: str | os.PathLike, *, fields: Sequence[str] = (), limits: IdLimits | None = None,
                 bad: BadLines | None = None, separators: Separators = Separators(), start: int = 0,
                 end: int | None = None) -> None:
        self.path = Path(path)
        self.limits, self.bad, self.separators = limits, bad, separators
        self.start, self.end = start, end

    @classmethod
    def handles(cls, path: Path) -> bool:
        return path.suffix.lower() == ".bin"

    @classmethod
    def shard_units(cls, path: Path, fields: Sequence[str]) -> int:
        """A shard is a document range."""
        return cls(path).index()[2].size - 1

    def index(self) -> tuple[np.dtype, np.ndarray, np.ndarray]:
        """(token dtype, first token of every document, then the end: int64 token offsets, document starts)."""
        idx = self.path.with_suffix(".idx")
        if not idx.is_file():
            raise UserError(f"{idx}: not found (a Megatron .bin is read with the .idx beside it)")
        raw = np.fromfile(idx, np.uint8)
        head = raw[:34].tobytes()
        if len(head) < 34 or head[:9] != self.MAGIC or int.from_bytes(head[9:17], "little") != 1 \
                or head[17] not in self.DTYPES:
            raise UserError(f"{idx}: not a Megatron index (MMIDIDX version 1 with an integer dtype)")
        dtype = np.dtype(self.DTYPES[head[17]])
        n_seq, n_doc = (int.from_bytes(head[a:a + 8], "little") for a in (18, 26))
        if raw.size < 34 + 12 * n_seq + 8 * n_doc or n_doc < 1:
            raise UserError(f"{idx}: shorter than its {n_seq:,} sequences and {n_doc:,} documents")
        sizes = raw[34:34 + 4 * n_seq].view(np.int32)
        pointers = raw[34 + 4 * n_seq:34 + 12 * n_seq].view(np.int64)
        docs = raw[34 + 12 * n_seq:34 + 12 * n_seq + 8 * n_doc].view(np.int64)
        starts = np.append(pointers // dtype.itemsize, pointers[-1] // dtype.itemsize + sizes[-1] if n_seq else 0)
        return dtype, starts.astype(np.int64), docs

    def __iter__(self) -> Iterator[TokenBatch]:
        dtype, seq_starts, docs = self.index()
        tokens = np.memmap(self.path, dtype, mode="r")
        doc_tokens = seq_starts[docs]  # token offset of every document start, and the end
        first, stop = self.start, docs.size - 1 if self.end is None else self.end
        while first < stop:
            last = min(stop, int(np.searchsorted(doc_tokens, doc_tokens[first] + self._BATCH_TOKENS, "right")) - 1)
            last = max(last, first + 1)
            a, b = doc_tokens[first], doc_tokens[last]
            batch = checked_batch(np.asarray(tokens[a:b]), doc_tokens[first:last + 1] - a, self.limits, self.bad,
                                  self.separators, name="tokens",
                                  where=lambda doc, first=first: f"{self.path}: document {first + doc + 1}")
            if last == stop:
                batch.nbytes = self.path.stat().st_size
            yield batch
            first = last


def checked_batch(vals: np.ndarray, offsets: np.ndarray, limits: IdLimits, bad: BadLines, separators: Separators, *,
                  name: str, where, null: np.ndarray | None = None, null_docs=()) -> TokenBatch:
    """Documents vals/offsets of any number type -> a batch in stream layout. A document holding an id out of
    range (or a null) is reported (`where(doc)`, `name[k] = problem`) and left out."""
    problems: dict[int, str] = {}  # document -> its first problem; reported in order
    out_of_range = (vals < 0) | (vals >= limits.limit)
    bad_at = np.flatnonzero(out_of_range if null is None else null | out_of_range)
    bad_docs, first = np.unique(np.searchsorted(offsets, bad_at, side="right") - 1, return_index=True)
    for doc, i in zip(bad_docs.tolist(), bad_at[first].tolist()):  # a document's first bad value only
        what = "null" if null is not None and null[i] else limits.problem(int(vals[i]))
        problems[doc] = f"{name}[{i - int(offsets[doc])}] = {what}"
    for doc in null_docs:
        problems[int(doc)] = f"{name} is null"
    keep = np.ones(offsets.size - 1, bool)
    for doc in sorted(problems):
        bad.report(where(doc), problems[doc])
        keep[doc] = False
    lengths = np.diff(offsets)
    if not keep.all():
        vals, lengths = vals[np.repeat(keep, lengths)], lengths[keep]
    out_offsets = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(lengths, out=out_offsets[1:])
    vals, out_offsets = separators.spread(vals.astype(np.int32), out_offsets)
    return TokenBatch(vals, out_offsets, nbytes=0, skipped=int((~keep).sum()))


READERS = (ArrowReader, MegatronReader, JsonlReader)  # the first that handles a path reads it


def reader_for(path: str | os.PathLike) -> type:
    """The reader class for a file, by its suffix."""
    return next(r for r in READERS if r.handles(Path(path)))


def read_stream(parts, *, fields: Sequence[str], limits: IdLimits, bad: BadLines, separators: Separators,
                block_bytes: int = BLOCK_BYTES, progress=None) -> Iterator[TokenBatch]:
    """The read stage: the parts of the inputs in order, as stream pieces with their separators written."""
    for part in parts:
        reader = reader_for(part.path).for_part(part, block_bytes=block_bytes, fields=fields, limits=limits, bad=bad,
                                                separators=separators)
        for batch in reader:
            separators.fill(batch.values, batch.offsets)
            if progress is not None:
                progress.update(batch.nbytes)
            yield batch


def read_token_batches(paths: str | os.PathLike | Sequence[str | os.PathLike], *, field: str | None = None,
                       vocab_size: int | None = None, on_bad_line: str = "error",
                       block_bytes: int = BLOCK_BYTES) -> Iterator[TokenBatch]:
    """Stream documents from token JSONL / Parquet / Arrow / Megatron .bin files, in order; each batch owns its
    arrays (copied: the JSONL reader's are views of reused buffers).

    `batch.to_arrow()` views a batch as a `pyarrow.LargeListArray` without copying.
    """
    from fastpack.sources import SourcePart

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    fields = (field,) if field else DEFAULT_FIELDS
    limits, bad = IdLimits(vocab_size=vocab_size), BadLines(skip=on_bad_line == "skip")
    parts = [SourcePart(Path(p)) for p in paths]
    for batch in read_stream(parts, fields=fields, limits=limits, bad=bad, separators=Separators(),
                             block_bytes=block_bytes):
        yield TokenBatch(batch.values.copy(), batch.offsets.copy(), batch.nbytes, batch.skipped)
