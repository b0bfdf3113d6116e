"""The tokenize stage: exact ids, order, identical output for any worker count, summary counts, bounded map."""
from __future__ import annotations

import json
import shutil
import threading

import orjson
import pytest
import sentencepiece as spm

from fastpack.config import SPLITS
from fastpack.corpus import tokenize_splits
from fastpack.corpus.parallel import ordered_map, worker_pool
from fastpack.errors import UserError


def copy_inputs(src, dst):
    shutil.copytree(src / "dataset/splits", dst / "dataset/splits")
    shutil.copytree(src / "tokenizer", dst / "tokenizer")


def test_tokens_are_sentencepiece_ids_in_split_order(prepared):
    root, _ = prepared
    sp = spm.SentencePieceProcessor(model_file=str(root / "tokenizer/sp_model.model"))
    summary = json.loads((root / "reports/tokenization_summary.json").read_text())
    for name in SPLITS:
        docs = [orjson.loads(x) for x in (root / f"dataset/splits/{name}.jsonl").read_bytes().splitlines()]
        lines = (root / f"dataset/tokenized/{name}_tokens.jsonl").read_bytes().splitlines()
        tokens = [orjson.loads(x) for x in lines]
        assert [t["id"] for t in tokens] == [d["id"] for d in docs]
        assert [t["input_ids"] for t in tokens] == [sp.encode(d["text"]) for d in docs]
        assert all(list(orjson.loads(x)) == ["id", "input_ids"] for x in lines)
        stats = summary["splits"][name]
        n_tokens = sum(len(t["input_ids"]) for t in tokens)
        chars = sum(len(d["text"]) for d in docs)
        assert (stats["documents"], stats["tokens"], stats["characters"]) == (len(docs), n_tokens, chars)
        assert stats["text_bytes"] == sum(len(d["text"].encode()) for d in docs)
        assert stats["unk_tokens"] == sum(t["input_ids"].count(1) for t in tokens) == 0
        assert stats["tokens_per_char"] == round(n_tokens / chars, 6)
    assert summary["total"]["documents"] == sum(summary["splits"][n]["documents"] for n in SPLITS)


@pytest.mark.parametrize("workers,chunk_bytes", [(1, 1 << 20), (2, 4096), (3, 1)])
def test_output_is_identical_for_any_worker_count_and_chunking(prepared, tmp_path, workers, chunk_bytes):
    root, config = prepared
    copy_inputs(root, tmp_path)
    result = tokenize_splits(config, tmp_path, workers=workers, chunk_bytes=chunk_bytes)
    assert not result.skipped
    for name in SPLITS:
        rel = f"dataset/tokenized/{name}_tokens.jsonl"
        assert (tmp_path / rel).read_bytes() == (root / rel).read_bytes()
    assert (tmp_path / "reports/tokenization_summary.json").read_bytes() == \
        (root / "reports/tokenization_summary.json").read_bytes()


def test_skips_when_up_to_date_and_rebuilds_when_a_split_changes(prepared, tmp_path):
    root, config = prepared
    copy_inputs(root, tmp_path)
    assert not tokenize_splits(config, tmp_path, workers=1).skipped
    assert tokenize_splits(config, tmp_path, workers=2).skipped
    with open(tmp_path / "dataset/splits/val.jsonl", "ab") as fh:
        fh.write(orjson.dumps({"id": "extra", "text": ""}) + b"\n")
    assert not tokenize_splits(config, tmp_path, workers=1).skipped
    last = (tmp_path / "dataset/tokenized/val_tokens.jsonl").read_bytes().splitlines()[-1]
    assert last == b'{"id":"extra","input_ids":[]}'
    summary = json.loads((tmp_path / "reports/tokenization_summary.json").read_text())
    assert summary["splits"]["val"]["empty_documents"] == 1


def test_bad_line_names_file_and_line_and_leaves_no_output(prepared, tmp_path):
    root, config = prepared
    copy_inputs(root, tmp_path)
    with open(tmp_path / "dataset/splits/test.jsonl", "ab") as fh:
        fh.write(b"not json\n")
    n = len((tmp_path / "dataset/splits/test.jsonl").read_bytes().splitlines())
    with pytest.raises(UserError, match=rf"test.jsonl:{n}: expected a JSON object, found invalid JSON"):
        tokenize_splits(config, tmp_path, workers=2, chunk_bytes=1024)
    assert not (tmp_path / "dataset/tokenized/test_tokens.jsonl").exists()
    assert not (tmp_path / "reports/tokenization_summary.json").exists()
    assert not list((tmp_path / "dataset/tokenized").glob(".*tmp*"))


def test_missing_inputs(prepared, tmp_path):
    _, config = prepared
    with pytest.raises(UserError, match=r"sp_model.model: tokenizer model not found"):
        tokenize_splits(config, tmp_path)


def _square(x):
    return x * x


def _noop():
    pass


def test_ordered_map_keeps_order_and_bounds_what_is_in_flight():
    pulled = 0
    lock = threading.Lock()

    def tasks():
        nonlocal pulled
        for i in range(100):
            with lock:
                pulled += 1
            yield i

    with worker_pool(2, _noop) as pool:
        results = ordered_map(pool, _square, tasks(), max_pending=4)
        first = next(results)
        assert first == 0 and pulled <= 4  # the producer waits for the consumer
        assert [first, *results] == [i * i for i in range(100)]
    with worker_pool(1, _noop) as pool:
        assert pool is None and list(ordered_map(pool, _square, range(5), 4)) == [0, 1, 4, 9, 16]
