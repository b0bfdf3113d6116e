"""`python -m fastpack.corpus` as a user runs it: real files, a fresh interpreter, exit codes, one-line errors."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

from fastpack.config import load_config, save_config

BUNDLE_FILES = [
    "config/training_config.json",
    "dataset/preprocessed/all_novels_preprocessed_clean.jsonl",
    "reports/preprocessing_summary.json",
    "reports/clean_noise_report.json",
    "dataset/splits/train.jsonl",
    "dataset/splits/val.jsonl",
    "dataset/splits/test.jsonl",
    "reports/split_summary.json",
    "tokenizer/sp_model.model",
    "tokenizer/sp_model.vocab",
    "tokenizer/tokenizer_info.json",
    "dataset/tokenized/train_tokens.jsonl",
    "dataset/tokenized/val_tokens.jsonl",
    "dataset/tokenized/test_tokens.jsonl",
    "reports/tokenization_summary.json",
]


def one_line_error(proc, *fragments: str) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def test_sample_then_all_then_nothing_to_do(cli, tmp_path):
    raw, root = tmp_path / "raw", tmp_path / "root"
    proc = cli("sample", "--out", str(raw), "--size-mb", "0.2")
    assert proc.returncode == 0 and "sample: 14 files" in proc.stdout, proc.stderr
    proc = cli("all", "--raw", str(raw), "--root", str(root), "--vocab-size", "1000", "--no-show-progress")
    assert proc.returncode == 0, proc.stderr
    for rel in BUNDLE_FILES:
        assert (root / rel).is_file(), rel
    assert [line.split(":")[0] for line in proc.stdout.splitlines()[:4]] == ["clean", "split", "tokenizer", "tokenize"]
    assert "wrote" in proc.stdout and proc.stderr == ""
    config = load_config(root / "config/training_config.json")
    assert config.tokenizer.vocab_size == 1000 and config.paths.raw_dir == str(raw.resolve())
    assert json.loads((root / "tokenizer/tokenizer_info.json").read_text())["pad_id"] == 0
    line = (root / "dataset/tokenized/val_tokens.jsonl").read_bytes().splitlines()[0]
    assert list(orjson.loads(line)) == ["id", "input_ids"]

    mtimes = {rel: (root / rel).stat().st_mtime_ns for rel in BUNDLE_FILES}
    again = cli("all", "--root", str(root))  # the config now knows the raw folder and the vocab size
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1] == "all: nothing to do, every output is up to date (--force rebuilds)"
    assert sum("up to date" in line for line in again.stdout.splitlines()) == 5
    assert {rel: (root / rel).stat().st_mtime_ns for rel in BUNDLE_FILES} == mtimes

    # one stage by itself, through --config; a changed setting rebuilds that stage and is saved
    proc = cli("split", "--config", str(root / "config/training_config.json"), "--set", "split.salt=other")
    assert proc.returncode == 0 and proc.stdout.startswith("split: train"), proc.stderr
    assert "updated" in proc.stdout and load_config(root / "config/training_config.json").split.salt == "other"


def test_help_explains_every_subcommand(cli):
    proc = cli("--help")
    assert proc.returncode == 0
    for name in ("all", "clean", "split", "tokenizer", "tokenize", "sample"):
        assert name in proc.stdout
    proc = cli("tokenize", "--help")
    assert proc.returncode == 0 and "--workers" in proc.stdout and "--force" in proc.stdout


def test_non_utf8_file_is_named(cli, tmp_path):
    raw = tmp_path / "raw"
    assert cli("sample", "--out", str(raw), "--size-mb", "0.1", "--bad-utf8").returncode == 0
    proc = cli("all", "--raw", str(raw), "--root", str(tmp_path / "root"), "--vocab-size", "800")
    one_line_error(proc, "99_ban_cu_cp1258.txt: not valid UTF-8 (line ", "--on-bad-utf8 skip|replace")
    assert not (tmp_path / "root/config/training_config.json").exists()  # nothing saved for a failed run
    proc = cli("all", "--raw", str(raw), "--root", str(tmp_path / "root"), "--vocab-size", "800", "--on-bad-utf8", "skip")
    assert proc.returncode == 0, proc.stderr
    assert "99_ban_cu_cp1258.txt" in proc.stderr and "skipped" in proc.stderr


def test_empty_folder(cli, tmp_path):
    (tmp_path / "raw").mkdir()
    proc = cli("all", "--raw", str(tmp_path / "raw"), "--root", str(tmp_path / "root"))
    one_line_error(proc, "raw: no .txt or .jsonl files found")


def test_fewer_than_three_novels(cli, tmp_path):
    text = "\n".join(f"Chương {i}\n\n" + "Ngày hôm ấy trời mưa rất to, cả làng im lặng chờ đợi. " * 6 for i in range(1, 4))
    for name in ("a.txt", "b.txt"):
        (tmp_path / "raw").mkdir(exist_ok=True)
        (tmp_path / "raw" / name).write_text(text + name, encoding="utf-8")
    proc = cli("all", "--raw", str(tmp_path / "raw"), "--root", str(tmp_path / "root"))
    one_line_error(proc, "split: found 2 group(s) by 'source', need at least 3")


def test_vocab_too_large_suggests_a_size(cli, prepared, tmp_path):
    root, _ = prepared
    shutil.copytree(root / "dataset/splits", tmp_path / "dataset/splits")
    proc = cli("tokenizer", "--root", str(tmp_path), "--vocab-size", "50000")
    one_line_error(proc, "tokenizer.vocab_size 50000 is too large", "pass --vocab-size")


def test_bad_config_value_names_the_key(cli, tmp_path):
    proc = cli("split", "--root", str(tmp_path), "--set", "split.train=0.5")
    one_line_error(proc, "split: train/val/test must be >= 0 and sum to 1")
    proc = cli("clean", "--root", str(tmp_path), "--set", "clean.nope=1")
    one_line_error(proc, "--set clean.nope: unknown key")


def test_the_packer_accepts_the_tokenized_jsonl(cli, prepared, tmp_path):
    pytest.importorskip("fastpack.pack")
    root, config = prepared
    for rel in ("tokenizer", "dataset/tokenized"):
        shutil.copytree(root / rel, tmp_path / rel)
    save_config(config, tmp_path / "config/training_config.json")
    tokens = tmp_path / "dataset/tokenized/val_tokens.jsonl"
    proc = subprocess.run([sys.executable, "-m", "fastpack", "--input", str(tokens), "--output", str(tmp_path / "val.npy"),
                           "--seq-len", "64", "--stride", "64"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    packed = np.load(tmp_path / "val.npy", mmap_mode="r")
    stream = [t for line in tokens.read_bytes().splitlines() for t in orjson.loads(line)["input_ids"] + [3]]
    n = len(stream) // 64
    assert packed.dtype == np.int32 and packed.shape == (n, 64) and n > 0
    assert np.array_equal(packed, np.array(stream[: n * 64], dtype=np.int32).reshape(n, 64))


def test_the_default_sample_with_the_suggested_vocab_size(cli, tmp_path):
    from fastpack.corpus import SAMPLE_VOCAB_SIZE

    assert cli("sample", "--out", str(tmp_path / "dataset/raw")).returncode == 0
    proc = cli("all", "--raw", str(tmp_path / "dataset/raw"), "--root", str(tmp_path), "--vocab-size", str(SAMPLE_VOCAB_SIZE))
    assert proc.returncode == 0, proc.stderr
    assert load_config(tmp_path / "config/training_config.json").paths.raw_dir == "dataset/raw"
    summary = json.loads((tmp_path / "reports/split_summary.json").read_text())
    assert summary["groups"] == 12 and all(summary["splits"][n]["groups"] >= 1 for n in ("train", "val", "test"))
    noise = json.loads((tmp_path / "reports/preprocessing_summary.json").read_text())["noise"]
    for kind in ("bom", "zero_width", "control", "unicode", "html_tags", "html_entities", "url_lines", "inline_urls",
                 "boilerplate", "whitespace", "blank_lines", "line_endings", "duplicate_documents", "short_documents"):
        assert noise[kind] > 0, kind
