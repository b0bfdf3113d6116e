"""Stage 4, tokenize: each split -> `dataset/tokenized/{split}_tokens.jsonl` + `reports/tokenization_summary.json`.

Output lines are `{"id": ..., "input_ids": [...]}` (orjson), one per document, in the split's order:
the packer's input format (DESIGN.md). Encoding runs on all cores: the split is read in chunks of
about `chunk_bytes`, each worker process loads the SentencePiece model once and turns a chunk of
JSON lines into a chunk of output bytes, and the results are written in order. At most
`2 * workers` chunks are in flight, so memory does not grow with the corpus.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator, Optional

import orjson

from fastpack.atomic import write_json_atomic
from fastpack.config import SPLITS, Config
from fastpack.corpus.build import Build, StageResult, fingerprint, read_build, rel, up_to_date
from fastpack.corpus.jsonl import iter_lines, open_output, parse_record, require_file, text_of
from fastpack.corpus.parallel import available_cpus, ordered_map, worker_pool
from fastpack.corpus.progress import byte_bar
from fastpack.spmodel import load_sentencepiece
from fastpack.tokenizer_info import MODEL_FILE

VERSION = 1
SUMMARY_REPORT = "tokenization_summary.json"
MAX_CHUNK_BYTES = 1 << 20
MIN_CHUNK_BYTES = 64 << 10
_STATS = ("documents", "empty_documents", "characters", "text_bytes", "tokens", "unk_tokens")

_SP = None  # the worker's SentencePieceProcessor


def _load_model(model_path: str) -> None:
    global _SP
    _SP = load_sentencepiece(model_path)


def encode_chunk(task: tuple[str, list[tuple[int, bytes]]]) -> tuple[bytes, tuple[int, ...], int]:
    """(path, [(line number, JSON line)]) -> (output JSONL bytes, counts in `_STATS` order, input bytes)."""
    path, lines = task
    ids, texts = [], []
    for lineno, line in lines:
        record = parse_record(path, lineno, line)
        texts.append(text_of(path, lineno, record))
        ids.append(record.get("id", f"{Path(path).name}:{lineno}"))
    encoded = _SP.encode(texts, num_threads=1)
    unk = _SP.unk_id()
    out = b"".join(orjson.dumps({"id": i, "input_ids": e}) + b"\n" for i, e in zip(ids, encoded))
    counts = (len(texts), sum(1 for e in encoded if not e), sum(map(len, texts)),
              sum(len(t.encode("utf-8")) for t in texts), sum(map(len, encoded)), sum(e.count(unk) for e in encoded))
    return out, counts, sum(len(line) + 1 for _, line in lines)


def _chunks(path: Path, chunk_bytes: int) -> Iterator[tuple[str, list[tuple[int, bytes]]]]:
    chunk, size = [], 0
    for lineno, line in iter_lines(path):
        chunk.append((lineno, line))
        size += len(line)
        if size >= chunk_bytes:
            yield str(path), chunk
            chunk, size = [], 0
    if chunk:
        yield str(path), chunk


def _split_summary(counts: list[int]) -> dict:
    stats = dict(zip(_STATS, counts))
    stats["tokens_per_char"] = round(stats["tokens"] / stats["characters"], 6) if stats["characters"] else 0.0
    stats["unk_rate"] = round(stats["unk_tokens"] / stats["tokens"], 8) if stats["tokens"] else 0.0
    return stats


def tokenize_splits(config: Config, root: str | Path, *, workers: Optional[int] = None, force: bool = False,
                    show_progress: bool = False, chunk_bytes: Optional[int] = None) -> StageResult:
    """Encode every split with the trained tokenizer (skipped when up to date)."""
    root = Path(root).resolve()
    paths = config.paths
    splits_dir, out_dir = paths.resolve(root, "splits_dir"), paths.resolve(root, "tokenized_dir")
    model = require_file(paths.resolve(root, "tokenizer_dir") / MODEL_FILE, "tokenizer model",
                         "run `python -m fastpack.corpus tokenizer` first")
    inputs = [require_file(splits_dir / f"{name}.jsonl", f"{name} split", "run `python -m fastpack.corpus split` first")
              for name in SPLITS]
    outputs = [out_dir / f"{name}_tokens.jsonl" for name in SPLITS]
    summary_path = paths.resolve(root, "reports_dir") / SUMMARY_REPORT
    build = Build(stage="tokenize", version=VERSION, inputs=[fingerprint(p, root) for p in [model, *inputs]],
                  params={"field": "text", "output_field": "input_ids"})
    if not force and up_to_date(read_build(summary_path), build, outputs, root):
        return StageResult("tokenize", True, f"tokenize: up to date ({rel(out_dir, root)} from the same splits "
                           f"and tokenizer)", tuple(outputs))

    total = sum(p.stat().st_size for p in inputs)
    workers = workers or config.tokenizer.encode_workers or available_cpus()
    if chunk_bytes is None:
        chunk_bytes = min(MAX_CHUNK_BYTES, max(MIN_CHUNK_BYTES, total // (4 * workers) + 1))
    workers = max(1, min(workers, -(-total // chunk_bytes)))
    per_split: dict[str, dict] = {}
    written: list[dict] = []
    load_sentencepiece(model)  # here, once: a pool whose workers cannot load it would respawn them forever
    summary_path.unlink(missing_ok=True)  # the marker goes first: an interrupted rebuild is redone next time
    started = time.perf_counter()
    with worker_pool(workers, _load_model, (str(model),)) as pool, \
            byte_bar(total, "tokenize", show_progress) as bar:
        for name, src, dst in zip(SPLITS, inputs, outputs):
            counts = [0] * len(_STATS)
            with open_output(dst, root, written) as out:
                for data, chunk_counts, read in ordered_map(pool, encode_chunk, _chunks(src, chunk_bytes), 2 * workers):
                    out.write(data)
                    counts = [a + b for a, b in zip(counts, chunk_counts)]
                    bar.update(read)
            per_split[name] = _split_summary(counts)
    seconds = time.perf_counter() - started

    overall = _split_summary([sum(s[k] for s in per_split.values()) for k in _STATS])
    summary = {"stage": "tokenize", "tokenizer": rel(model, root), "splits": per_split, "total": overall,
               "build": build.with_outputs(written).to_dict()}
    write_json_atomic(summary_path, summary)
    mb = overall["text_bytes"] / 1e6
    message = (f"tokenize: {overall['documents']:,} documents, {overall['tokens']:,} tokens "
               f"({overall['tokens_per_char']:.3f}/char, unk rate {overall['unk_rate']:.2e}) -> {rel(out_dir, root)}; "
               f"{mb:.1f} MB of text in {seconds:.2f} s = {mb / max(seconds, 1e-9):.1f} MB/s on {workers} worker(s)")
    return StageResult("tokenize", False, message, tuple(outputs), {**summary, "seconds": seconds, "workers": workers})
