"""`python -m fastpack.corpus` with a corrupt tokenizer model, killed mid-stage, and odd arguments."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
from fault_helpers import assert_one_line_error, kill9, run, start_paused, temps_under  # noqa: E402


def _copy(prepared, tmp_path) -> Path:
    root = tmp_path / "root"
    shutil.copytree(prepared[0], root)
    return root


def test_a_corrupt_tokenizer_model_is_one_line_before_any_worker_starts(prepared, tmp_path):
    root = _copy(prepared, tmp_path)
    model = root / "tokenizer" / "sp_model.model"
    data = bytearray(model.read_bytes())
    data[10:400] = b"\xff" * 390  # a few hundred bytes overwritten in place
    model.write_bytes(bytes(data))
    for workers in ("2", "1"):
        proc = run("fastpack.corpus", "tokenize", "--root", root, "--workers", workers, "--force", timeout=60)
        assert_one_line_error(proc, str(model), "not a readable SentencePiece model")
    assert temps_under(root) == []


def test_a_killed_tokenize_is_reclaimed_by_the_next_run(prepared, tmp_path):
    root = _copy(prepared, tmp_path)
    kill9(start_paused("fastpack.corpus", "tokenize", "--root", root, "--workers", "1", "--force",
                       fault="pause:val_tokens.jsonl"))
    left = temps_under(root)
    assert [p.name.split(".tmp-")[0] for p in left] == [".val_tokens.jsonl"] and left[0].stat().st_size > 0
    proc = run("fastpack.corpus", "tokenize", "--root", root, "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert "reclaimed 1 temp file(s) of killed runs" in proc.stdout
    assert temps_under(root) == []


def test_tokenizer_progress_shows_no_raw_sentencepiece_log(prepared, tmp_path):
    root = _copy(prepared, tmp_path)
    proc = run("fastpack.corpus", "tokenizer", "--root", root, "--vocab-size", "1000", "--force", "--show-progress")
    assert proc.returncode == 0, proc.stderr
    assert ".cc(" not in proc.stderr and "trainer_interface" not in proc.stderr, proc.stderr[:2000]


def test_odd_arguments_are_one_line(tmp_path):
    (tmp_path / "taken.txt").write_text("x")
    assert_one_line_error(run("fastpack.corpus", "sample", "--out", tmp_path / "taken.txt"),
                          "an existing file", "taken.txt")
    assert_one_line_error(run("fastpack.corpus", "clean", "--root", tmp_path, "--workers", "-3"), "--workers", "-3")
    (tmp_path / "cfgdir").mkdir()
    assert_one_line_error(run("fastpack.corpus", "split", "--config", tmp_path / "cfgdir"), "a folder, expected a JSON file")


def test_a_full_disk_in_a_corpus_stage_is_one_line(prepared, tmp_path):
    root = _copy(prepared, tmp_path)
    proc = run("fastpack.corpus", "tokenize", "--root", root, "--workers", "1", "--force", fault="enospc:*_tokens.jsonl")
    assert_one_line_error(proc, "disk full writing", str(root / "dataset" / "tokenized" / "train_tokens.jsonl"))
    assert temps_under(root) == []
