"""The packer's public API: `pack_sequences` (files -> packed split on disk) and `pack_arrays` (in memory).

read (bytes -> documents) -> windowers (documents -> rows) -> write (rows -> .npy, then .pt, then
the meta). Outputs appear under their final names only when complete, the meta last.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from fastpack.atomic import Reclaimed, Staging, naming, reclaim_temps, temp_path_for
from fastpack.bestfit import pack_bestfit
from fastpack.boundaries import BoundariesWriter, docs_path_for
from fastpack.errors import UserError
from fastpack.locks import lock_path_for, output_lock
from fastpack.meta import PackMeta, meta_path_for
from fastpack.readers import (BLOCK_BYTES, DEFAULT_FIELDS, ArrowReader, BadLines, IdLimits, JsonlReader, Separators,
                              TokenBatch, add_separators)
from fastpack.sources import SourcePart, check_inputs, describe_sources, shard_parts
from fastpack.windows import WindowCounts, make_windower
from fastpack.writers import ArraySink, BackgroundWriter, NpyWriter, npy_to_pt

MODES = ("concat", "document", "bestfit")
FORMATS = ("npy", "pt", "both")
UINT16_LIMIT = 1 << 16


@dataclass(frozen=True, kw_only=True)
class PackParams:
    """Everything that shapes the packed output; with the sources' fingerprints, the cache key."""

    seq_len: int = 1024
    stride: int = 1024
    mode: str = "concat"
    eos_id: int | None = None
    bos_id: int | None = None
    pad_id: int | None = None
    pad_last: bool = False
    fields: tuple[str, ...] = DEFAULT_FIELDS
    vocab_size: int | None = None
    dtype: str = "int32"
    on_bad_line: str = "error"
    num_shards: int = 1
    shard_index: int = 0

    def __post_init__(self) -> None:
        if self.seq_len < 1:
            raise UserError(f"--seq-len must be >= 1, got {self.seq_len}")
        if self.stride < 1:
            raise UserError(f"--stride must be >= 1, got {self.stride}")
        if self.stride > self.seq_len:
            raise UserError(f"--stride ({self.stride}) must not exceed --seq-len ({self.seq_len}): windows would skip tokens")
        if self.mode not in MODES:
            raise UserError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.mode == "bestfit" and self.stride != self.seq_len:
            raise UserError(f"--mode bestfit places whole documents: --stride must equal --seq-len ({self.seq_len})")
        if self.dtype not in ("int32", "uint16"):
            raise UserError(f"--dtype must be int32 or uint16, got {self.dtype!r}")
        if self.on_bad_line not in ("error", "skip"):
            raise UserError(f"--on-bad-line must be error or skip, got {self.on_bad_line!r}")
        if self.vocab_size is not None and self.vocab_size < 1:
            raise UserError(f"--vocab-size must be >= 1, got {self.vocab_size}")
        if self.pads and self.pad_id is None:
            why = "--pad-last" if self.pad_last else f"--mode {self.mode}"
            raise UserError(f"{why} pads windows and needs a pad id: pass --pad-id N (the tokenizer defines none)")
        limits = self.limits
        for name in ("eos_id", "bos_id", "pad_id"):
            value = getattr(self, name)
            problem = None if value is None else limits.problem(value)
            if problem:
                raise UserError(f"--{name.replace('_', '-')} {problem}")

    @classmethod
    def from_arguments(cls, *, seq_len: int, stride: int | None, eos_id: int | None, add_eos: bool,
                       field: str | None = None, dtype: str = "int32", **rest) -> "PackParams":
        """From the public functions' keywords: stride None is seq_len, dtype `auto` resolved, eos required."""
        if add_eos and eos_id is None:
            raise UserError("no eos id: pass --eos-id N (eos_id=N), or --no-eos (add_eos=False) to pack without"
                            " separators")
        return cls(seq_len=seq_len, stride=seq_len if stride is None else stride, eos_id=eos_id if add_eos else None,
                   fields=(field,) if field else DEFAULT_FIELDS, dtype=resolve_dtype(dtype, rest.get("vocab_size")),
                   **rest)

    @property
    def pads(self) -> bool:
        return self.pad_last or self.mode != "concat"

    @property
    def separators(self) -> Separators:
        return Separators(bos=-1 if self.bos_id is None else self.bos_id, eos=-1 if self.eos_id is None else self.eos_id)

    def windower(self, sink, boundaries=None):
        return make_windower(self.mode, seq_len=self.seq_len, stride=self.stride, bos=self.bos_id is not None,
                             eos=self.eos_id is not None, pad_id=self.pad_id, pad_last=self.pad_last,
                             dtype=self.dtype, sink=sink, boundaries=boundaries)

    @property
    def limits(self) -> IdLimits:
        return IdLimits(vocab_size=self.vocab_size, dtype_limit=UINT16_LIMIT if self.dtype == "uint16" else None)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fields"] = list(self.fields)
        return d


def resolve_dtype(dtype: str, vocab_size: int | None) -> str:
    """`auto`: uint16 when every id fits (vocab <= 65,536), halving disk and RAM; else int32."""
    if dtype == "auto":
        return "uint16" if vocab_size is not None and vocab_size <= UINT16_LIMIT else "int32"
    return dtype


@dataclass
class PackSummary:
    name: str
    files: dict[str, str]
    meta_path: str
    shape: tuple[int, int]
    dtype: str
    counts: dict[str, int]
    seconds: float
    compile_seconds: float = 0.0
    up_to_date: bool = False
    bad_line_examples: list[str] = field(default_factory=list)
    reclaimed: Reclaimed = field(default_factory=Reclaimed)

    @property
    def tokens_per_s(self) -> float:
        return self.counts.get("tokens_in", 0) / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        c = self.counts
        where = ", ".join(self.files.values())
        note = f"\n  {self.reclaimed.describe()}" if self.reclaimed else ""
        if self.up_to_date:
            return (f"{self.name}: up to date ({self.shape[0]:,} windows x {self.shape[1]}) -> {where} "
                    f"(use --force to re-pack)" + note)
        out = max(c["tokens_out"], 1)
        lines = [
            f"{self.name}: {self.shape[0]:,} windows x {self.shape[1]} ({self.dtype}) -> {where}",
            f"  documents {c['documents']:,} ({c['empty_documents']:,} empty, {c['documents_split']:,} split across"
            f" windows, {c['documents_truncated']:,} truncated), skipped lines {c['skipped_lines']:,}",
            f"  tokens in {c['tokens_in']:,} (+{c['eos_added'] + c['bos_added']:,} eos/bos), padded {c['padded']:,}"
            f" ({100 * c['padded'] / out:.2f}%), dropped {c['dropped']:,} ({100 * c['dropped'] / out:.2f}%)",
            f"  {self.seconds:.2f} s, {self.tokens_per_s / 1e6:.1f} M tokens/s"
            + (f" (first run: {self.compile_seconds:.1f} s compiling kernels, cached from now on)" if self.compile_seconds else ""),
        ]
        lines += [f"  skipped {example}" for example in self.bad_line_examples]
        return "\n".join(lines) + note


def output_files(output: str | os.PathLike, fmt: str, num_shards: int = 1, shard_index: int = 0) -> dict[str, Path]:
    """`out/train.npy` -> {"npy": out/train.npy, "pt": ...} for the formats asked, shard suffix included."""
    output = Path(output)
    stem = output.name[: -len(output.suffix)] if output.suffix in (".npy", ".pt") else output.name
    if num_shards > 1:
        stem = f"{stem}-{shard_index:05d}-of-{num_shards:05d}"
    kinds = ("npy", "pt") if fmt == "both" else (fmt,)
    return {k: output.with_name(f"{stem}.{k}") for k in kinds}


def pack_sequences(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    seq_len: int = 1024,
    stride: int | None = None,
    mode: str = "concat",
    eos_id: int | None = None,
    add_eos: bool = True,
    bos_id: int | None = None,
    pad_id: int | None = None,
    pad_last: bool = False,
    field: str | None = None,
    vocab_size: int | None = None,
    format: str | None = None,
    dtype: str = "int32",
    on_bad_line: str = "error",
    num_shards: int = 1,
    shard_index: int = 0,
    show_progress: bool = False,
    force: bool = False,
    config: dict | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> PackSummary:
    """Pack token files (JSONL, Parquet, Arrow; in order, as one stream) into `output` (.npy/.pt) + meta.

    Skips the work when the meta beside `output` shows the same sources and parameters (unless
    `force`). `format` defaults to the output's suffix; `config` (the resolved training config)
    is stored in the meta for reproducibility.
    """
    started = time.perf_counter()
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    fmt = format or ("pt" if Path(output).suffix == ".pt" else "npy")
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    params = PackParams.from_arguments(
        seq_len=seq_len, stride=stride, mode=mode, eos_id=eos_id, add_eos=add_eos, bos_id=bos_id, pad_id=pad_id,
        pad_last=pad_last, field=field, vocab_size=vocab_size, dtype=dtype, on_bad_line=on_bad_line,
        num_shards=num_shards, shard_index=shard_index)
    paths = check_inputs(inputs)
    parts = shard_parts(paths, num_shards, shard_index, params.fields)
    files = output_files(output, fmt, num_shards, shard_index)
    meta_path = meta_path_for(next(iter(files.values())))
    sources = describe_sources(paths)
    name = meta_path.name[: -len(".meta.json")]
    with output_lock(lock_path_for(meta_path.parent, name), f"{meta_path.parent / name} (packed split)"):
        reclaimed = reclaim_temps(meta_path.parent)
        if not force:
            meta = fresh_meta(meta_path, params, sources, files)
            if meta is not None:
                return PackSummary(name, {k: str(p) for k, p in files.items()}, str(meta_path), meta.shape,
                                   meta.dtype, meta.counts, time.perf_counter() - started, up_to_date=True,
                                   reclaimed=reclaimed)
        compile_seconds = warm_up(params)
        bad = BadLines(skip=on_bad_line == "skip")
        progress = _progress(parts, show_progress, name, passes=2 if params.mode == "bestfit" else 1)
        with naming(meta_path.parent):
            rows, window_counts = _write_outputs(parts, params, files, meta_path, bad, block_bytes, progress)
        counts = asdict(window_counts) | {"tokens_out": rows * params.seq_len, "skipped_lines": bad.count}
        PackMeta(
            name=name, files={"npy": None, "pt": None} | {k: p.name for k, p in files.items()},
            docs=docs_path_for(meta_path).name, shape=(rows, params.seq_len), dtype=params.dtype,
            seq_len=params.seq_len, stride=params.stride, mode=params.mode, eos_id=params.eos_id,
            bos_id=params.bos_id, pad_id=params.pad_id, vocab_size=params.vocab_size, counts=counts, sources=sources,
            params=params.to_dict(), shard={"index": shard_index, "count": num_shards} if num_shards > 1 else None,
            config=config,
        ).write(meta_path)
    if rows == 0:
        print(f"warning: {name}: 0 windows: the input holds {counts['tokens_in']:,} tokens, fewer than one window of "
              f"{params.seq_len} (pass --pad-last to keep a padded window)", file=sys.stderr)
    return PackSummary(name, {k: str(p) for k, p in files.items()}, str(meta_path), (rows, params.seq_len),
                       params.dtype, counts, time.perf_counter() - started, compile_seconds,
                       bad_line_examples=bad.examples, reclaimed=reclaimed)


def _write_outputs(parts, params: PackParams, files: dict[str, Path], meta_path: Path, bad: BadLines,
                   block_bytes: int, progress) -> tuple[int, WindowCounts]:
    """Every array into its temp, then all renamed back to back: the old split stays usable until then.

    The old meta stays too: until the new one is written it no longer matches the arrays
    (`fresh_meta` sees that), and the new one follows the renames at once.
    """
    staging = Staging()
    npy_final = files.get("npy")
    tmp_npy = temp_path_for(npy_final or files["pt"].with_suffix(".npy"))  # a .pt is made from the .npy
    tmp_npy.parent.mkdir(parents=True, exist_ok=True)
    docs_path = docs_path_for(meta_path)
    boundaries = BoundariesWriter(docs_path)
    try:
        batches = lambda bad=bad: _batches(parts, params, bad, block_bytes, progress)  # noqa: E731
        rows, window_counts = _write_windows(batches, params, tmp_npy, boundaries)
        progress.close()
        boundaries.stage(staging)
        if "pt" in files:
            npy_to_pt(tmp_npy, staging.stage(files["pt"]))
        if npy_final:
            staging.stage(npy_final, tmp_npy)
        staging.commit()
    finally:
        staging.abort()
        boundaries.abort()
        progress.close()
        tmp_npy.unlink(missing_ok=True)
    return rows, window_counts


def _write_windows(batches, params: PackParams, npy_path: Path, boundaries) -> tuple[int, WindowCounts]:
    """Cut every window of the inputs into `npy_path`; returns (rows, counts)."""
    if params.mode == "bestfit":
        again = lambda: batches(BadLines(skip=True))  # noqa: E731  (bad lines were counted in pass one)
        counts = pack_bestfit(batches(), again, npy_path, seq_len=params.seq_len, pad_id=params.pad_id,
                              bos=params.bos_id is not None, eos=params.eos_id is not None, dtype=params.dtype,
                              boundaries=boundaries)
        return counts.windows, counts
    writer = BackgroundWriter(NpyWriter(npy_path, params.seq_len, params.dtype))
    try:
        windower = params.windower(writer, boundaries)
        for batch in batches():
            windower.feed(batch.values, batch.offsets)
        windower.finish()
        return writer.close(), windower.counts
    finally:
        writer.abort()


def fresh_meta(meta_path: Path, params: PackParams, sources: list[dict], files: dict[str, Path]) -> PackMeta | None:
    """The existing meta when it matches these sources and parameters and its files are all there."""
    if not meta_path.is_file():
        return None
    try:
        meta = PackMeta.read(meta_path)
    except UserError:
        return None
    if meta.params != params.to_dict() or meta.sources != sources:
        return None
    if {k for k, v in meta.files.items() if v} != set(files) or not all(p.is_file() for p in files.values()):
        return None
    from fastpack.arraycheck import array_problem, newer_than

    for path in [*files.values(), docs_path_for(meta_path)]:
        if newer_than(path, meta_path):  # written after the meta: another run's, or an interrupted re-pack
            return None
    if any(array_problem(p, meta.shape, meta.dtype) for p in files.values()):
        return None
    return meta


def _batches(parts: Sequence[SourcePart], params: PackParams, bad: BadLines, block_bytes: int, progress):
    common = dict(fields=params.fields, limits=params.limits, bad=bad, separators=params.separators)
    for part in parts:
        if part.is_arrow:
            rows = (part.start, part.end) if part.end is not None else None
            yield from ArrowReader(part.path, rows=rows, **common)
            progress.update(part.path.stat().st_size)
        else:
            reader = JsonlReader(part.path, block_bytes=block_bytes, start=part.start, end=part.end, **common)
            for batch in reader:
                progress.update(batch.nbytes)
                yield batch


def _progress(parts: Sequence[SourcePart], show: bool, name: str, passes: int = 1):
    from tqdm import tqdm

    total = passes * sum(p.path.stat().st_size if p.is_arrow or p.end is None else p.end - p.start for p in parts)
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"packing {name}",
                disable=not show, file=sys.stderr, leave=False)


def warm_up(params: PackParams) -> float:
    """Load (or, on the first run, compile) the kernels this pack uses; seconds spent if it compiled."""
    from fastpack import jsonscan, kernels

    started = time.perf_counter()
    dispatchers = [jsonscan.scan_block, jsonscan.split_points, jsonscan.last_newline, kernels.stream_positions,
                   kernels.build_stream, kernels.cut_windows, kernels.document_window_counts,
                   kernels.fill_document_windows, kernels.concat_segments, kernels.cut_pieces,
                   kernels.best_fit_decreasing, kernels.scatter_pieces, kernels.fill_tails]
    misses = sum(sum(d.stats.cache_misses.values()) for d in dispatchers)
    pack_arrays([[1, 2, 3]], seq_len=2, stride=2 if params.mode == "bestfit" else 1, mode=params.mode, eos_id=0,
                pad_id=1, pad_last=True, dtype=params.dtype)
    buf = np.frombuffer(b'{"ids": [1]}\n', np.uint8).copy()
    bounds = jsonscan.split_points(buf, buf.size, 1)
    jsonscan.last_newline(buf, buf.size)
    names, starts = np.frombuffer(b"ids", np.uint8).copy(), np.array([0, 3], np.int64)
    i64 = [np.zeros(4, np.int64) for _ in range(6)]
    jsonscan.scan_block(buf, bounds, names, starts, params.limits.limit, -1, 0, np.zeros(8, np.int32), 8, i64[0],
                        i64[1], 4, *i64[2:], 4, np.zeros((1, 5), np.int64))
    compiled = sum(sum(d.stats.cache_misses.values()) for d in dispatchers) > misses
    return time.perf_counter() - started if compiled else 0.0


def pack_arrays(
    docs: Iterable[Sequence[int]] | tuple[np.ndarray, np.ndarray],
    *,
    seq_len: int,
    stride: int | None = None,
    mode: str = "concat",
    eos_id: int | None = None,
    add_eos: bool = True,
    bos_id: int | None = None,
    pad_id: int | None = None,
    pad_last: bool = False,
    vocab_size: int | None = None,
    dtype: str = "int32",
) -> np.ndarray:
    """In-memory packing for small inputs: documents (lists of ids, or `(values, offsets)`) -> [n, seq_len]."""
    params = PackParams.from_arguments(seq_len=seq_len, stride=stride, mode=mode, eos_id=eos_id, add_eos=add_eos,
                                       bos_id=bos_id, pad_id=pad_id, pad_last=pad_last, vocab_size=vocab_size,
                                       dtype=dtype)
    stream, offsets = add_separators(*_as_flat(docs, params.limits), params.separators)
    if params.mode == "bestfit":
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "packed.npy"
            batch = [TokenBatch(stream, offsets)]
            _write_windows(lambda bad=None: iter(batch), params, path, None)
            return np.load(path)
    sink = ArraySink(params.seq_len, params.dtype)
    windower = params.windower(sink)
    windower.feed(stream, offsets)
    windower.finish()
    return sink.rows()


def _as_flat(docs, limits: IdLimits) -> tuple[np.ndarray, np.ndarray]:
    from fastpack.kernels import first_out_of_range

    if isinstance(docs, tuple) and len(docs) == 2 and isinstance(docs[0], np.ndarray):
        values, offsets = (np.asarray(a) for a in docs)
        offsets = np.array(offsets, np.int64)
    else:
        arrays = [np.asarray(d, dtype=np.int64).reshape(-1) for d in docs]
        values = np.concatenate(arrays) if arrays else np.empty(0, np.int64)
        offsets = np.zeros(len(arrays) + 1, np.int64)
        np.cumsum([a.size for a in arrays], out=offsets[1:])
    if not np.issubdtype(values.dtype, np.integer):
        raise UserError(f"token ids must be integers, got {values.dtype}")
    if offsets.size == 0 or offsets[0] != 0 or offsets[-1] != values.size or (np.diff(offsets) < 0).any():
        raise UserError("offsets must start at 0, never decrease, and end at len(values)")
    wide = values.astype(np.int64)
    bad = first_out_of_range(wide, limits.limit)
    if bad >= 0:
        raise UserError(f"token id {limits.problem(int(wide[bad]))} (at position {bad})")
    return wide.astype(np.int32), offsets
