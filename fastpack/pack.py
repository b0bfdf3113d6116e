"""The packer's public API: `pack_sequences` (files -> packed split on disk) and `pack_arrays` (in memory).

read (bytes -> documents, readers.py) -> windowers (documents -> rows, the mode's: modes.py) ->
write (rows -> .npy, then .pt, then the meta). Every parameter comes in as one `PackSpec`
(spec.py), built from keywords here or from the config by the CLI and the Kaggle runner.
Outputs appear under their final names only when complete, the meta last.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from fastpack.atomic import Reclaimed, Staging, naming, reclaim_temps, temp_path_for
from fastpack.boundaries import BoundariesWriter, docs_path_for
from fastpack.errors import UserError
from fastpack.locks import lock_path_for, output_lock
from fastpack.meta import PackMeta, meta_path_for
from fastpack.readers import BLOCK_BYTES, BadLines, JsonlReader, TokenBatch, read_stream, reader_for
from fastpack.sources import SourcePart, check_inputs, describe_sources, shard_parts
from fastpack.spec import IdLimits, PackSpec
from fastpack.windows import WindowCounts
from fastpack.writers import ArraySink, BackgroundWriter, NpyWriter, npy_to_pt

FORMATS = ("npy", "pt", "both")


@dataclass
class PackSummary:
    name: str
    files: dict[str, str]
    meta_path: str
    shape: tuple[int, int]
    dtype: str
    counts: dict[str, int]
    seconds: float
    kernel_seconds: float = 0.0  # loading (or compiling) the kernels, part of `seconds`
    compiled: bool = False  # the kernels had to be compiled (a first run)
    up_to_date: bool = False
    bad_line_examples: list[str] = field(default_factory=list)
    reclaimed: Reclaimed = field(default_factory=Reclaimed)

    @property
    def compile_seconds(self) -> float:
        """The kernels' compiling on a first run, else 0."""
        return self.kernel_seconds if self.compiled else 0.0

    @property
    def tokens_per_s(self) -> float:
        """Packing throughput: the kernels' loading or compiling is not packing."""
        packing = self.seconds - self.kernel_seconds
        return self.counts.get("tokens_in", 0) / packing if packing > 0 else 0.0

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
            f"  {self.seconds:.2f} s, {self.tokens_per_s / 1e6:.1f} M tokens/s packing, "
            + (f"+ {self.compile_seconds:.1f} s compiling kernels (first run: cached from now on)" if self.compiled
               else f"+ {self.kernel_seconds:.2f} s loading kernels"),
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
    spec: Optional[PackSpec] = None,
    *,
    format: str | None = None,
    show_progress: bool = False,
    force: bool = False,
    config: dict | None = None,
    block_bytes: int = BLOCK_BYTES,
    **keywords,
) -> PackSummary:
    """Pack token files (JSONL, Parquet, Arrow; in order, as one stream) into `output` (.npy/.pt) + meta.

    The parameters: a `PackSpec`, or its keywords (`seq_len=1024, stride=None, mode="concat",
    eos_id, add_eos=True, bos_id, pad_id, pad_last=False, field, vocab_size, dtype="int32",
    on_bad_line="error", num_shards=1, shard_index=0`, see `PackSpec.from_keywords`). Skips the
    work when the meta beside `output` shows the same sources and parameters (unless `force`).
    `format` defaults to the output's suffix; `config` (the resolved training config) is stored
    in the meta for reproducibility.
    """
    started = time.perf_counter()
    spec = _spec(spec, keywords)
    fmt = format or ("pt" if Path(output).suffix == ".pt" else "npy")
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    paths = check_inputs([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)
    parts = shard_parts(paths, spec.num_shards, spec.shard_index, spec.fields)
    files = output_files(output, fmt, spec.num_shards, spec.shard_index)
    meta_path = meta_path_for(next(iter(files.values())))
    sources = describe_sources(paths)
    name = meta_path.name[: -len(".meta.json")]
    shown = {k: str(p) for k, p in files.items()}
    with output_lock(lock_path_for(meta_path.parent, name), f"{meta_path.parent / name} (packed split)"):
        reclaimed = reclaim_temps(meta_path.parent)
        meta = None if force else fresh_meta(meta_path, spec, sources, files)
        if meta is not None:
            return PackSummary(name, shown, str(meta_path), meta.shape, meta.dtype, meta.counts,
                               time.perf_counter() - started, up_to_date=True, reclaimed=reclaimed)
        readers = {reader_for(p.path) for p in parts}
        kernel_seconds, compiled = warm_up(spec, jsonl=JsonlReader in readers, spread=bool(readers - {JsonlReader}))
        bad = BadLines(skip=spec.on_bad_line == "skip")
        progress = _progress(parts, show_progress, name, passes=spec.mode_object.passes)
        with naming(next(iter(files.values()))):  # a write on a full disk names no file
            rows, window_counts = _write_outputs(parts, spec, files, meta_path, bad, block_bytes, progress)
        counts = asdict(window_counts) | {"tokens_out": rows * spec.seq_len, "skipped_lines": bad.count}
        PackMeta.of_pack(spec, name=name, files=files, docs=docs_path_for(meta_path).name, rows=rows,
                         counts=counts, sources=sources, config=config).write(meta_path)
    if rows == 0:
        print(f"warning: {name}: 0 windows: the input holds {counts['tokens_in']:,} tokens, fewer than one window of "
              f"{spec.seq_len} (pass --pad-last to keep a padded window)", file=sys.stderr)
    return PackSummary(name, shown, str(meta_path), (rows, spec.seq_len), spec.dtype, counts,
                       time.perf_counter() - started, kernel_seconds, compiled,
                       bad_line_examples=bad.examples, reclaimed=reclaimed)


def _write_outputs(parts, spec: PackSpec, files: dict[str, Path], meta_path: Path, bad: BadLines,
                   block_bytes: int, progress) -> tuple[int, WindowCounts]:
    """Every array into its temp, then all renamed back to back: the old split stays usable until then.

    The old meta stays too: until the new one is written it no longer matches the arrays
    (`fresh_meta` sees that), and the new one follows the renames at once.
    """
    staging = Staging()
    npy_final = files.get("npy")
    tmp_npy = temp_path_for(npy_final or files["pt"].with_suffix(".npy"))  # a .pt is made from the .npy
    tmp_npy.parent.mkdir(parents=True, exist_ok=True)
    boundaries = BoundariesWriter(docs_path_for(meta_path))
    common = dict(fields=spec.fields, limits=spec.limits, separators=spec.separators, block_bytes=block_bytes,
                  progress=progress)
    try:
        # Later passes (best-fit's second) read what the first did: its bad lines are already counted.
        batches = lambda n: read_stream(parts, bad=bad if n == 0 else BadLines(skip=True), **common)  # noqa: E731
        rows, window_counts = _write_windows(batches, spec, tmp_npy, boundaries)
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


def _write_windows(batches, spec: PackSpec, npy_path: Path, boundaries) -> tuple[int, WindowCounts]:
    """Cut every window of the inputs into `npy_path`; returns (rows, counts)."""
    writer = BackgroundWriter(NpyWriter(npy_path, spec.seq_len, spec.dtype))
    try:
        windower = spec.windower(writer, boundaries)
        run_windower(windower, batches)
        return writer.close(), windower.counts
    finally:
        writer.abort()


def run_windower(windower, batches: Callable[[int], Iterable[TokenBatch]]) -> None:
    """Feed the windower every pass it asks for (`batches(n)` reads the inputs for pass n), then finish it."""
    for n in range(windower.passes):
        if n:
            windower.next_pass()
        for batch in batches(n):
            windower.feed(batch.values, batch.offsets)
    windower.finish()


def fresh_meta(meta_path: Path, spec: PackSpec, sources: list[dict], files: dict[str, Path]) -> PackMeta | None:
    """The existing meta when it matches these sources and parameters and its files are all there."""
    if not meta_path.is_file():
        return None
    try:
        meta = PackMeta.read(meta_path)
    except UserError:
        return None
    if meta.params != spec.to_dict() or meta.sources != sources:
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


def _progress(parts: Sequence[SourcePart], show: bool, name: str, passes: int = 1):
    from tqdm import tqdm

    total = passes * sum(p.input_bytes for p in parts)
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"packing {name}",
                disable=not show, file=sys.stderr, leave=False)


def _kernels() -> list:
    """Every numba kernel of the packer (compiled or loaded from the cache on first use)."""
    from numba.core.registry import CPUDispatcher

    from fastpack import jsonscan, kernels

    return [k for module in (jsonscan, kernels) for k in vars(module).values() if isinstance(k, CPUDispatcher)]


def warm_up(spec: PackSpec, *, jsonl: bool = True, spread: bool = False) -> tuple[float, bool]:
    """Load (on a first run: compile) the kernels this pack calls, and only those: the separators, the
    JSONL scanner for JSONL inputs, the spreading of Arrow ones, the mode's windower. Returns (seconds,
    whether anything compiled), which the summary reports apart from the packing."""
    started = time.perf_counter()  # importing numba and the kernels counts too: it is not packing
    from fastpack import kernel_cache

    dispatchers = _kernels()
    kernel_cache.seed(dispatchers)  # the wheel's precompiled kernels, if it has them
    misses = sum(sum(d.stats.cache_misses.values()) for d in dispatchers)
    if jsonl:
        _warm_scanner(spec)
    if spread:  # the readers of arrays (Parquet/Arrow, Megatron) lay documents out with Separators.spread
        spec.separators.spread(np.array([1, 2], np.int32), np.array([0, 2], np.int64))
    spec.separators.fill(np.array([1, 2, 0, 3, 0], np.int32), np.array([0, 3, 5], np.int64))
    tiny = PackSpec.from_keywords(seq_len=2, stride=1 if spec.mode_object.strides else 2, mode=spec.mode, eos_id=0,
                                  pad_id=1, pad_last=True, dtype=spec.dtype)
    if spec.mode_object.passes > 1:
        pack_arrays([[1, 2, 3]], tiny)
    else:  # not pack_arrays: its id check and separator spreading are not this pack's kernels
        sink = ArraySink(2, spec.dtype)
        stream = np.array([1, 2, 0, 3, 0], np.int32)
        run_windower(tiny.windower(sink), lambda n: [TokenBatch(stream, np.array([0, 3, 5], np.int64))])
    compiled = sum(sum(d.stats.cache_misses.values()) for d in dispatchers) > misses
    return time.perf_counter() - started, compiled


def _warm_scanner(spec: PackSpec) -> None:
    from fastpack import jsonscan

    buf = np.frombuffer(b'{"ids": [1]}\n', np.uint8).copy()
    bounds = jsonscan.split_points(buf, buf.size, 1)
    jsonscan.last_newline(buf, buf.size)
    names, starts = np.frombuffer(b"ids", np.uint8).copy(), np.array([0, 3], np.int64)
    i64 = [np.zeros(4, np.int64) for _ in range(6)]
    jsonscan.scan_block(buf, bounds, names, starts, spec.limits.limit, 0, 1, np.zeros(8, np.int32), 8, i64[0],
                        i64[1], 4, *i64[2:], 4, np.zeros((1, 5), np.int64))


def pack_arrays(docs: Iterable[Sequence[int]] | tuple[np.ndarray, np.ndarray], spec: Optional[PackSpec] = None,
                **keywords) -> np.ndarray:
    """In-memory packing for small inputs: documents (lists of ids, or `(values, offsets)`) -> [n, seq_len].

    The parameters: a `PackSpec` or its keywords, as for `pack_sequences`.
    """
    spec = _spec(spec, keywords)
    stream, offsets = spec.separators.apply(*_as_flat(docs, spec.limits))
    sink = ArraySink(spec.seq_len, spec.dtype)
    run_windower(spec.windower(sink), lambda n: [TokenBatch(stream, offsets)])
    return sink.rows()


def _spec(spec: Optional[PackSpec], keywords: dict) -> PackSpec:
    if spec is None:
        return PackSpec.from_keywords(**keywords)
    if keywords:
        raise TypeError(f"pass a PackSpec or its keywords, not both (got {', '.join(keywords)})")
    return spec


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
