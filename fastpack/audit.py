"""`python -m fastpack audit PACKED --input SOURCES`: prove where every source token went.

Re-reads the sources with the packed split's own parameters and checks, independently of the
packing kernels (plain numpy over the stream):

* every window holds exactly the tokens the mode says it should (concat: the stream at k*stride;
  document: each document's own windows; bestfit: each document's pieces, each exactly once),
  padding included;
* the boundaries sidecar names the right document segments for every window;
* conservation: tokens in the sources + separators = tokens in windows - duplicated overlap
  + dropped - padding, with each term counted and compared with the meta.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from fastpack.boundaries import read_boundaries
from fastpack.errors import UserError, run_main
from fastpack.meta import PackMeta, meta_path_for

MAX_PROBLEMS = 10


@dataclass
class AuditReport:
    problems: list[str] = field(default_factory=list)
    numbers: dict[str, int] = field(default_factory=dict)

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    @property
    def ok(self) -> bool:
        return not self.problems


def _beside(meta_path: Path, recorded: str, suffix: str) -> Path:
    """The file the meta names, or (a split copied under a new name) the one named like the meta."""
    named = meta_path.with_name(recorded)
    renamed = meta_path.with_name(meta_path.name[: -len(".meta.json")] + suffix)
    for path in (named, renamed):
        if path.is_file():
            return path
    raise UserError(f"{meta_path}: names {recorded}, which is not beside it (nor is {renamed.name})")


def audit(packed: str | Path, inputs: Sequence[str | Path] | None = None) -> AuditReport:
    """Check a packed split against its sources (default: the paths its meta records)."""
    from fastpack.readers import BadLines, read_stream
    from fastpack.sources import SourcePart, shard_parts

    packed = Path(packed)
    meta_path = meta_path_for(packed if packed.suffix in (".npy", ".pt") else packed.with_suffix(".npy"))
    meta = PackMeta.read(meta_path)
    kind = "npy" if meta.files["npy"] else "pt"
    array_path = _beside(meta_path, meta.files[kind], f".{kind}")
    windows = _open_windows(array_path)
    params = meta.spec()
    if params.num_shards > 1 and inputs is None:
        raise UserError("a shard's sources are shared with other shards: pass --input with the shard's files")
    paths = [Path(p) for p in inputs] if inputs else [Path(s["path"]) for s in meta.sources]
    parts = shard_parts(paths, params.num_shards, params.shard_index, params.fields) if inputs else \
        [SourcePart(p) for p in paths]
    bad = BadLines(skip=params.on_bad_line == "skip")
    batches = read_stream(parts, fields=params.fields, limits=params.limits, bad=bad, separators=params.separators)
    report = AuditReport()
    if windows.shape != meta.shape:
        report.problem(f"{array_path}: shape {windows.shape}, the meta says {meta.shape}")
        return report
    boundaries = read_boundaries(_beside(meta_path, meta.docs, ".docs.npz")) if meta.docs else None
    params.mode_object.audit_check()(windows, params, boundaries, report).run(batches)
    report.numbers["skipped_lines"] = bad.count
    _check_accounting(meta, params, report)
    return report


def _open_windows(path: Path) -> np.ndarray:
    if path.suffix == ".pt":
        import torch

        return torch.load(path, mmap=True, weights_only=True).numpy()
    return np.load(path, mmap_mode="r")


class _Check:
    def __init__(self, windows: np.ndarray, params, boundaries, report: AuditReport) -> None:
        self.windows, self.params, self.boundaries, self.report = windows, params, boundaries, report
        self.L = params.seq_len
        self.n = windows.shape[0]
        self.sep = params.separators.per_doc
        self.numbers = report.numbers
        for key in ("source_tokens", "separators", "documents", "window_tokens", "padding"):
            self.numbers[key] = 0

    def count_docs(self, lengths: np.ndarray) -> None:
        nonempty = int(np.count_nonzero(lengths))
        self.numbers["documents"] += lengths.size
        self.numbers["separators"] += nonempty * self.sep
        self.numbers["source_tokens"] += int(lengths.sum()) - nonempty * self.sep

    def check_window(self, w: int, expected: np.ndarray, docs: np.ndarray) -> None:
        """Window w against its expected tokens (shorter: padded) and the document of each token."""
        row = np.asarray(self.windows[w])
        n = expected.size
        self.numbers["window_tokens"] += n
        self.numbers["padding"] += self.L - n
        if not np.array_equal(row[:n], expected):
            at = int(np.flatnonzero(row[:n] != expected)[0])
            self.report.problem(f"window {w}, position {at}: {row[at]} where the sources give {expected[at]}"
                                f" (document {docs[at]})")
        elif n < self.L and not (row[n:] == self.params.pad_id).all():
            self.report.problem(f"window {w}: padding after position {n} is not pad id {self.params.pad_id}")
        if self.boundaries is not None:
            self._check_segments(w, docs)

    def _check_segments(self, w: int, docs: np.ndarray) -> None:
        change = np.flatnonzero(np.diff(docs)) + 1
        cuts = np.concatenate([[0], change, [docs.size]]) if docs.size else np.zeros(1, np.int64)
        want_lengths, want_docs = np.diff(cuts), docs[cuts[:-1]]
        offsets = self.boundaries["window_offsets"]
        if w + 1 >= offsets.size:
            self.report.problem(f"boundaries sidecar: no entry for window {w}")
            return
        a, b = offsets[w], offsets[w + 1]
        got_lengths, got_docs = self.boundaries["segment_lengths"][a:b], self.boundaries["segment_docs"][a:b]
        if not (np.array_equal(got_lengths, want_lengths) and np.array_equal(got_docs, want_docs)):
            self.report.problem(f"boundaries sidecar, window {w}: segments {list(zip(got_docs.tolist(), got_lengths.tolist()))}"
                                f", the sources give {list(zip(want_docs.tolist(), want_lengths.tolist()))}")

    def finish_windows(self, checked: int) -> None:
        if checked != self.n:
            self.report.problem(f"{self.n} windows packed, the sources give {checked}")
        if self.boundaries is not None and self.boundaries["window_offsets"].size != self.n + 1:
            self.report.problem(f"boundaries sidecar covers {self.boundaries['window_offsets'].size - 1} windows"
                                f", the array has {self.n}")


class ConcatCheck(_Check):
    """Windows are the stream at k*stride; kept in a buffer from the next unchecked window on."""

    def run(self, batches) -> None:
        L, s = self.L, self.params.stride
        tokens, docs = np.empty(0, np.int32), np.empty(0, np.int64)
        base, w, doc0, stream_len = 0, 0, 0, 0
        for batch in batches:
            lengths = np.diff(batch.offsets)
            self.count_docs(lengths)
            tokens = np.concatenate([tokens, batch.values])
            docs = np.concatenate([docs, np.repeat(np.arange(doc0, doc0 + lengths.size), lengths)])
            doc0 += lengths.size
            stream_len += batch.values.size
            while w * s + L <= stream_len:
                a = w * s - base
                if w < self.n:
                    self.check_window(w, tokens[a:a + L], docs[a:a + L])
                w += 1
            cut = min(w * s - base, tokens.size)
            tokens, docs, base = tokens[cut:], docs[cut:], base + cut
        full = w
        covered = 0 if full == 0 else (full - 1) * s + L
        if self.params.pad_last and full * s < stream_len:
            if full < self.n:
                self.check_window(full, tokens[full * s - base:], docs[full * s - base:])
            w, covered = full + 1, stream_len
        self.numbers["dropped"] = stream_len - covered
        self.numbers["duplicated_overlap"] = self.numbers["window_tokens"] - covered
        self.finish_windows(w)


class DocumentCheck(_Check):
    def run(self, batches) -> None:
        L, s = self.L, self.params.stride
        w, doc0 = 0, 0
        for batch in batches:
            lengths = np.diff(batch.offsets)
            self.count_docs(lengths)
            for i in np.flatnonzero(lengths):
                doc = batch.values[batch.offsets[i]:batch.offsets[i + 1]]
                ids = np.full(doc.size, doc0 + i, np.int64)
                full = 0 if doc.size < L else (doc.size - L) // s + 1
                for k in range(full + (full * s < doc.size)):  # full windows, then one padded (DESIGN.md)
                    if w < self.n:
                        self.check_window(w, doc[k * s:k * s + L], ids[k * s:k * s + L])
                    w += 1
            doc0 += lengths.size
        self.numbers["dropped"] = 0
        self.numbers["duplicated_overlap"] = self.numbers["window_tokens"] - self.numbers["source_tokens"] \
            - self.numbers["separators"]
        self.finish_windows(w)


class BestFitCheck(_Check):
    """Each document's pieces (seq_len cuts of it) must be the window runs the sidecar gives it, once each."""

    def run(self, batches) -> None:
        if self.boundaries is None:
            raise UserError("auditing best-fit windows needs their boundaries sidecar (.docs.npz)")
        b = self.boundaries
        counts = np.diff(b["window_offsets"])
        seg_window = np.repeat(np.arange(counts.size), counts)
        starts = np.concatenate([[0], np.cumsum(b["segment_lengths"], dtype=np.int64)])[:-1]
        seg_offset = starts - starts[b["window_offsets"][seg_window]] if seg_window.size else starts
        by_doc = np.argsort(b["segment_docs"], kind="stable")
        sorted_docs = b["segment_docs"][by_doc]
        used = np.zeros(self.n, np.int64)
        np.add.at(used, seg_window, b["segment_lengths"])
        doc0 = 0
        for batch in batches:
            lengths = np.diff(batch.offsets)
            self.count_docs(lengths)
            for i in range(lengths.size):
                d = doc0 + i
                doc = batch.values[batch.offsets[i]:batch.offsets[i + 1]]
                lo, hi = np.searchsorted(sorted_docs, [d, d + 1])
                runs = sorted(bytes(np.ascontiguousarray(self.windows[seg_window[j], seg_offset[j]:seg_offset[j] + b["segment_lengths"][j]]))
                              for j in by_doc[lo:hi])
                pieces = sorted(bytes(np.ascontiguousarray(doc[k:k + self.L], self.windows.dtype))
                                for k in range(0, doc.size, self.L))
                if runs != pieces:
                    self.report.problem(f"document {d}: {len(pieces)} pieces in the sources, {hi - lo} runs in the"
                                        " windows, and their tokens differ")
            doc0 += lengths.size
        if sorted_docs.size and sorted_docs[-1] >= doc0:
            self.report.problem(f"boundaries sidecar names document {sorted_docs[-1]}, the sources have {doc0}")
        for w in range(self.n):
            row = np.asarray(self.windows[w])
            if not (row[used[w]:] == self.params.pad_id).all():
                self.report.problem(f"window {w}: padding after position {used[w]} is not pad id {self.params.pad_id}")
        self.numbers["window_tokens"] = int(used.sum())
        self.numbers["padding"] = self.n * self.L - int(used.sum())
        self.numbers["dropped"] = 0
        self.numbers["duplicated_overlap"] = 0
        self.finish_windows(self.n)


def _check_accounting(meta: PackMeta, params, report: AuditReport) -> None:
    x = report.numbers
    lhs = x["source_tokens"] + x["separators"]
    rhs = x["window_tokens"] - x["duplicated_overlap"] + x["dropped"]
    if lhs != rhs:
        report.problem(f"tokens do not add up: sources {x['source_tokens']:,} + separators {x['separators']:,}"
                       f" != in windows {x['window_tokens']:,} - overlap {x['duplicated_overlap']:,}"
                       f" + dropped {x['dropped']:,}")
    c = meta.counts
    for ours, theirs in (("source_tokens", "tokens_in"), ("padding", "padded"), ("dropped", "dropped"),
                         ("documents", "documents"), ("skipped_lines", "skipped_lines")):
        if x[ours] != c[theirs]:
            report.problem(f"meta says {theirs} = {c[theirs]:,}, the audit counts {x[ours]:,}")


def format_report(report: AuditReport, packed: Path) -> str:
    x = report.numbers
    total = x.get("window_tokens", 0) + x.get("padding", 0)
    lines = [
        f"{packed}: " + ("audit passed" if report.ok else f"audit FAILED ({len(report.problems)} problems shown)"),
        f"  tokens in sources       {x.get('source_tokens', 0):>15,}   ({x.get('documents', 0):,} documents,"
        f" {x.get('skipped_lines', 0):,} bad lines skipped)",
        f"  + separators            {x.get('separators', 0):>15,}",
        f"  = tokens in windows     {x.get('window_tokens', 0):>15,}",
        f"    - duplicated overlap  {x.get('duplicated_overlap', 0):>15,}",
        f"    + dropped (tail)      {x.get('dropped', 0):>15,}",
        f"  padding                 {x.get('padding', 0):>15,}   ({100 * x.get('padding', 0) / max(total, 1):.2f}%"
        " of window slots)",
    ]
    return "\n".join(lines + [f"  problem: {p}" for p in report.problems])


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastpack audit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("packed", help="the packed split (.npy, .pt or its .meta.json)")
    p.add_argument("--input", nargs="+", metavar="FILE", help="its sources (default: the paths in its meta)")
    args = p.parse_args(argv)
    packed = Path(args.packed)
    if packed.name.endswith(".meta.json"):
        packed = packed.with_name(packed.name[: -len(".meta.json")] + ".npy")
    report = audit(packed, args.input)
    print(format_report(report, packed))
    return 0 if report.ok else 2


if __name__ == "__main__":
    sys.exit(main())
