"""Training as a user meets trouble: a diverging run, a corrupt checkpoint, a second run in the same
folder, a kill during a save, a full disk, and sampling from NaN weights (subprocesses, real files)."""
from __future__ import annotations

import errno
import json
import os
import re
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1]))
from fault_helpers import assert_one_line_error, kill9, start_paused, temps_under  # noqa: E402
from fault_helpers import run as run_module  # noqa: E402

from trainer import checkpoint as ckpt  # noqa: E402

TINY = ["--preset", "tiny", "--nproc", "1", "--set", "training.eval_interval=1000", "--set", "training.sample_prompts=[]"]


def train(root, out, *args, fault=None):
    return run_module("trainer.train_lm", "--config", root / "config" / "training_config.json", "--output-dir", out,
                      *TINY, *args, fault=fault, timeout=240)


def train_paused(root, out, *args, fault):
    return start_paused("trainer.train_lm", "--config", root / "config" / "training_config.json", "--output-dir", out,
                        *TINY, *args, fault=fault)


def test_a_diverging_run_skips_updates_then_stops_and_keeps_the_good_checkpoint(lm_root, tmp_path):
    out = tmp_path / "out"
    assert train(lm_root, out, "--max-steps", 2, "--set", "training.checkpoint_interval=1").returncode == 0
    proc = train(lm_root, out, "--max-steps", 40, "--set", "training.lr=1e30", "--set", "training.max_nonfinite_steps=3",
                 "--set", "training.checkpoint_interval=1")
    line = assert_one_line_error(proc, "training diverged: gradient norm not finite for 3 steps in a row",
                                 "lower training.lr (now 1e+30)")
    first_bad = int(re.search(r"\(steps (\d+)-", line).group(1))
    assert proc.stdout.count("update skipped") == 3 and "no checkpoint: 1 non-finite step(s)" in proc.stdout
    # The newest checkpoint is the last finite step's; no NaN weights were ever written.
    last = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert last["step"] == first_bad - 1 and f"step {first_bad - 1}) is from before it" in line
    assert ckpt.is_valid_checkpoint(out / "checkpoints" / "last.pt")
    assert all(torch.isfinite(t).all() for t in last["model"].values() if t.is_floating_point())


def _corrupt_in_place(path: Path, at: float = 0.5, n: int = 300) -> None:
    """A few hundred bytes overwritten, same size, same inode (the hard-linked twin changes too)."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(int(size * at))
        f.write(os.urandom(n))


def test_a_corrupted_checkpoint_is_named_skipped_and_moved_aside(lm_root, tmp_path):
    out = tmp_path / "out"
    assert train(lm_root, out, "--max-steps", 2, "--set", "training.checkpoint_interval=1").returncode == 0
    folder = out / "checkpoints"
    size = (folder / "last.pt").stat().st_size
    _corrupt_in_place(folder / "last.pt")  # also step-2, its hard link
    assert (folder / "last.pt").stat().st_size == size
    proc = train(lm_root, out, "--max-steps", 3, "--set", "training.checkpoint_interval=1")
    assert proc.returncode == 0, proc.stderr
    assert f"resume: skipped {folder / 'step-00000002.pt'}: checksum mismatch" in proc.stdout
    assert "moved aside to step-00000002.pt.unreadable" in proc.stdout
    assert f"resumed from {folder / 'step-00000001.pt'} at step 1" in proc.stdout
    assert (folder / "step-00000002.pt.unreadable").stat().st_size == size
    # Every checkpoint unreadable: it says so, starts fresh, and the old files are kept aside.
    for pt in folder.glob("*.pt"):
        _corrupt_in_place(pt, at=0.3)
    proc = train(lm_root, out, "--max-steps", 1)
    assert proc.returncode == 0, proc.stderr
    assert f"resume auto: starting fresh: none of them is valid in {folder}" in proc.stdout
    assert len(list(folder.glob("*.unreadable*"))) >= 4


def test_a_second_training_in_the_same_folder_stops_and_a_killed_save_is_reclaimed(lm_root, tmp_path):
    out = tmp_path / "out"
    first = train_paused(lm_root, out, "--max-steps", 3, "--set", "training.checkpoint_interval=1",
                         fault="pause:step-00000001.pt")
    try:
        second = train(lm_root, out, "--max-steps", 3)
        assert_one_line_error(second, f"{out} (training output) is being written by another run (pid {first.pid}")
    finally:
        kill9(first)
    left = temps_under(out)
    assert [p.name.split(".tmp-")[0] for p in left] == [".step-00000001.pt"] and left[0].stat().st_size > 0
    assert ckpt.folder_bytes(out / "checkpoints") == left[0].stat().st_size  # max_checkpoint_gb counts it
    proc = train(lm_root, out, "--max-steps", 2)
    assert proc.returncode == 0, proc.stderr
    assert "reclaimed 1 temp file(s) of killed runs" in proc.stdout
    assert json.loads((out / "summary.json").read_text())["reclaimed_temps"]["files"] == 1
    assert temps_under(out) == [] and not (out / ".train_lm.lock").exists()


def test_a_full_disk_while_checkpointing_is_one_line(lm_root, tmp_path):
    out = tmp_path / "out"
    proc = train(lm_root, out, "--max-steps", 1, fault="enospc:step-*.pt")
    assert_one_line_error(proc, "disk full writing", str(out / "checkpoints" / "step-00000001.pt"), "MB free there")
    assert temps_under(out) == []


def test_disk_full_inside_torch_save_is_reported_as_disk_full(tmp_path, monkeypatch):
    """torch.save hides a failed write behind a RuntimeError about zip positions; the OSError comes out."""
    real_open = open

    class FullDisk:
        def __init__(self, fh):
            self.fh, self.left = fh, 4096

        def write(self, data):
            if len(data) > self.left:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.left -= len(data)
            return self.fh.write(data)

        def flush(self):
            self.fh.flush()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(ckpt, "open", lambda path, mode="r": FullDisk(real_open(path, mode)), raising=False)
    state = {"format": ckpt.FORMAT, "version": ckpt.VERSION, "step": 1, "model": {"w": torch.zeros(100_000)}}
    with pytest.raises(OSError) as info:
        ckpt.save_checkpoint(state, tmp_path, is_best=False, keep=1, max_bytes=1e12, log=lambda m: None)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "step-00000001.pt")
    assert list(tmp_path.iterdir()) == []


def test_generate_from_nan_weights_or_a_corrupt_file_is_one_line(lm_root, tmp_path):
    out = tmp_path / "out"
    assert train(lm_root, out, "--max-steps", 1).returncode == 0
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name][0] = float("nan")
    nan_dir = tmp_path / "nan"
    path = ckpt.save_checkpoint(state, nan_dir, is_best=False, keep=1, max_bytes=1e12, log=lambda m: None)
    proc = run_module("trainer.generate", "--checkpoint", path, "--prompt", "the", "--max-tokens", 3)
    assert_one_line_error(proc, str(path), "hold NaN or inf", "step 1")
    _corrupt_in_place(out / "checkpoints" / "last.pt")
    proc = run_module("trainer.generate", "--checkpoint", out / "checkpoints" / "last.pt", "--prompt", "the")
    assert_one_line_error(proc, "last.pt: not a usable checkpoint: checksum mismatch")


def test_generate_with_a_corrupt_tokenizer_model_is_one_line(lm_root, tmp_path):
    out = tmp_path / "out"
    assert train(lm_root, out, "--max-steps", 1).returncode == 0
    bad = tmp_path / "tok" / "sp_model.model"
    bad.parent.mkdir()
    bad.write_bytes(os.urandom(2000))
    proc = run_module("trainer.generate", "--checkpoint", out / "checkpoints" / "last.pt", "--prompt", "the",
                      "--tokenizer", bad.parent)
    assert_one_line_error(proc, str(bad), "not a readable SentencePiece model")


def test_training_with_a_corrupt_tokenizer_model_is_one_line(lm_root, tmp_path):
    model = lm_root / "tokenizer" / "sp_model.model"
    model.write_bytes(os.urandom(2000))
    proc = run_module("trainer.train_lm", "--config", lm_root / "config" / "training_config.json", "--output-dir",
                      tmp_path / "out", "--preset", "tiny", "--nproc", "1", "--max-steps", 1, timeout=240)
    assert_one_line_error(proc, str(model), "not a readable SentencePiece model")
