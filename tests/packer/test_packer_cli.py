"""`python -m fastpack` as a user runs it: real files, a subprocess, exit codes and messages."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from packer_reference import reference_docs, reference_windows


def run(*args, cwd=None):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "fastpack", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def assert_user_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


GOOD = '{"input_ids": [1, 2, 3]}\n'
BAD_LINES = {
    "invalid JSON": ('{"input_ids": [1, 2}\n', "invalid JSON"),
    "missing field": ('{"text": "hello"}\n', "missing field 'input_ids'"),
    "float": ('{"input_ids": [1, 2.5]}\n', "input_ids[1] is a float (2.5)"),
    "string": ('{"input_ids": [1, "2"]}\n', "input_ids[1] is a string"),
    "nested": ('{"input_ids": [1, [2]]}\n', "input_ids[1] is a list"),
    "bool": ('{"input_ids": [true]}\n', "input_ids[0] is true"),
    "not a list": ('{"input_ids": 7}\n', "field 'input_ids' must be a list of token ids, found a int (7)"),
    "negative": ('{"input_ids": [1, -4]}\n', "input_ids[1] = -4 is negative"),
    "vocab": ('{"input_ids": [1, 500]}\n', "input_ids[1] = 500 is >= vocab size 100"),
    "int32": ('{"input_ids": [4294967296]}\n', "input_ids[0] = 4294967296 is beyond int32"),
    "utf8": (b'{"text": "\xff\xfe", "input_ids": [1]}\n', "invalid UTF-8"),
    "not an object": ("[1, 2]\n", "expected a JSON object"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_line_is_one_clear_error(tmp_path, case):
    bad, message = BAD_LINES[case]
    bad = bad if isinstance(bad, bytes) else bad.encode()
    src = tmp_path / "in.jsonl"
    src.write_bytes(GOOD.encode() * 2 + b"\n" + bad + GOOD.encode())
    out = tmp_path / "out"
    proc = run("--input", src, "--output", out / "train.npy", "--seq-len", 2, "--eos-id", 0, "--vocab-size", 100,
               "--format", "both")
    assert_user_error(proc, f"{src}:4:", message)
    assert not out.exists() or list(out.iterdir()) == []


def test_truncated_last_line(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(GOOD + '{"input_ids": [1, 2')
    proc = run("--input", src, "--output", tmp_path / "o.npy", "--eos-id", 0)
    assert_user_error(proc, f"{src}:2:", "truncated")
    assert not (tmp_path / "o.npy").exists()


def test_bad_line_never_replaces_a_good_output(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(GOOD * 5)
    assert run("--input", src, "--output", tmp_path / "o.npy", "--seq-len", 2, "--eos-id", 0).returncode == 0
    outputs = ["o.docs.npz", "o.meta.json", "o.npy"]
    before = [(tmp_path / name).read_bytes() for name in outputs]
    src.write_text(GOOD * 5 + '{"input_ids": [-1]}\n')
    assert_user_error(run("--input", src, "--output", tmp_path / "o.npy", "--seq-len", 2, "--eos-id", 0), ":6:")
    assert [(tmp_path / name).read_bytes() for name in outputs] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", *outputs]


def test_skip_bad_lines_counts_them(tmp_path):
    src = tmp_path / "in.jsonl"
    lines = [GOOD, BAD_LINES["negative"][0], GOOD, BAD_LINES["invalid JSON"][0], '{"input_ids": [7]}\n']
    src.write_text("".join(lines))
    proc = run("--input", src, "--output", tmp_path / "o.npy", "--seq-len", 2, "--eos-id", 0, "--on-bad-line", "skip")
    assert proc.returncode == 0, proc.stderr
    assert "skipped lines 2" in proc.stdout and f"{src}:2: input_ids[1] = -4 is negative" in proc.stdout
    meta = json.loads((tmp_path / "o.meta.json").read_text())
    assert meta["counts"]["skipped_lines"] == 2
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), reference_windows([[1, 2, 3], [1, 2, 3], [7]], 2, eos=0))


@pytest.mark.parametrize("args,message", [
    (["--seq-len", 4, "--stride", 8], "stride (--stride) must be between 1 and seq_len (4), got 8"),
    (["--seq-len", 0], "seq_len (--seq-len) must be >= 1"),
    (["--pad-last"], "--pad-last pads windows and needs a pad id"),
    (["--mode", "document"], "--mode document pads windows and needs a pad id"),
    ([], "no eos id"),
])
def test_bad_arguments(tmp_path, args, message):
    src = tmp_path / "in.jsonl"
    src.write_text(GOOD)
    eos = [] if message == "no eos id" else ["--eos-id", 0]
    assert_user_error(run("--input", src, "--output", tmp_path / "o.npy", *eos, *args), message)
    assert not (tmp_path / "o.npy").exists()


def test_missing_input_and_usage_errors(tmp_path):
    assert_user_error(run("--input", tmp_path / "nope.jsonl", "--output", tmp_path / "o.npy", "--eos-id", 0),
                      "nope.jsonl: input file not found")
    assert_user_error(run("--input", tmp_path, "--output", tmp_path / "o.npy", "--eos-id", 0), "is a folder")
    assert_user_error(run("--input", tmp_path / "x.jsonl"), "--input and --output go together")
    proc = run("--seq-len", "abc")
    assert proc.returncode == 2 and "invalid int value" in proc.stderr and "Traceback" not in proc.stderr


def test_pt_output_loads_with_mmap(tmp_path):
    torch = pytest.importorskip("torch")  # the .pt writer needs torch; packer-only installs skip

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"input_ids": list(range(i, i + 9))}) + "\n" for i in range(40)))
    proc = run("--input", src, "--output", tmp_path / "o.pt", "--seq-len", 8, "--stride", 5, "--eos-id", 0)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "o.docs.npz", "o.meta.json", "o.pt"]
    t = torch.load(tmp_path / "o.pt", mmap=True, weights_only=True)
    assert t.dtype == torch.int32 and t.is_contiguous()
    np.testing.assert_array_equal(t.numpy(), reference_windows(reference_docs([src]), 8, 5, eos=0))
    assert json.loads((tmp_path / "o.meta.json").read_text())["files"] == {"npy": None, "pt": "o.pt"}


def test_project_mode_uses_config_and_tokenizer_and_caches(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "training_config.json").write_text(json.dumps({"packing": {"seq_len": 4}}))
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "tokenizer" / "tokenizer_info.json").write_text(
        json.dumps({"vocab_size": 50, "pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3}))
    tok = tmp_path / "dataset" / "tokenized"
    tok.mkdir(parents=True)
    for split, n in (("train", 30), ("val", 5), ("test", 4)):
        (tok / f"{split}_tokens.jsonl").write_text(
            "".join(json.dumps({"id": i, "input_ids": [10 + i % 30, 11, 12]}) + "\n" for i in range(n)))
    first = run(cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "eos_id 3, pad_id 0, vocab_size 50" in first.stderr
    for split in ("train", "val", "test"):
        out = np.load(tmp_path / "dataset" / "packed" / f"{split}.npy")
        docs = reference_docs([tok / f"{split}_tokens.jsonl"])
        np.testing.assert_array_equal(out, reference_windows(docs, 4, eos=3))
        meta = json.loads((tmp_path / "dataset" / "packed" / f"{split}.meta.json").read_text())
        assert meta["config"]["packing"]["seq_len"] == 4 and meta["pad_id"] == 0 and meta["vocab_size"] == 50
    second = run(cwd=tmp_path)
    assert second.stdout.count("up to date") == 3
    time.sleep(0.01)
    (tok / "val_tokens.jsonl").write_text(json.dumps({"input_ids": [13, 14, 15, 16]}) + "\n")
    third = run(cwd=tmp_path)
    assert third.stdout.count("up to date") == 2 and "val: 1 windows x 4" in third.stdout
    fourth = run("--seq-len", 2, cwd=tmp_path)
    assert "up to date" not in fourth.stdout and np.load(tmp_path / "dataset/packed/val.npy").shape == (2, 2)


def test_help_is_fast_and_explains():
    started = time.perf_counter()
    proc = run("--help")
    assert proc.returncode == 0 and "--seq-len" in proc.stdout and "tokenized dir" in proc.stdout
    assert time.perf_counter() - started < 5  # generous for CI; the benchmarks measure the real figure
