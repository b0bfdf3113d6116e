import os

import pytest
import torch

from fastpack.errors import UserError
from trainer import checkpoint as ckpt


def state(step, size=1000):
    return {"format": ckpt.FORMAT, "version": ckpt.VERSION, "step": step, "model": {"w": torch.full((size,), float(step))},
            "model_args": {"n_layer": 2}, "rng": [{"torch": torch.get_rng_state()}], "config": {"a": [1, "x", None]}}


def save(folder, step, *, best=False, keep=2, max_bytes=1e12, size=1000):
    return ckpt.save_checkpoint(state(step, size), folder, is_best=best, keep=keep, max_bytes=max_bytes, log=lambda m: None)


def test_last_best_and_the_newest_k_periodic_are_kept(tmp_path):
    for step in (10, 20, 30, 40):
        save(tmp_path, step, best=step == 20)
    names = sorted(p.name for p in tmp_path.glob("*.pt"))
    assert names == ["best.pt", "last.pt", "step-00000030.pt", "step-00000040.pt"]
    assert torch.load(tmp_path / "best.pt", weights_only=True)["step"] == 20
    last = torch.load(tmp_path / "last.pt", weights_only=True)  # tensors and plain types only
    assert last["step"] == 40 and torch.equal(last["model"]["w"], torch.full((1000,), 40.0))
    # last is a hard link: no second copy on disk.
    assert os.path.samefile(tmp_path / "last.pt", tmp_path / "step-00000040.pt")
    assert not list(tmp_path.glob(".*tmp*"))  # no temp file left behind


def test_total_size_cap_drops_the_oldest_periodic_first(tmp_path):
    one = save(tmp_path, 1, size=100_000).stat().st_size
    for step in (2, 3, 4):
        save(tmp_path, step, keep=10, max_bytes=2.5 * one, size=100_000)
    assert sorted(p.name for p in tmp_path.glob("step-*.pt")) == ["step-00000003.pt", "step-00000004.pt"]
    assert ckpt.folder_bytes(tmp_path) <= 2.5 * one


def test_validity_needs_the_marker_a_matching_size_and_a_readable_file(tmp_path):
    good = save(tmp_path / "run", 5)
    assert ckpt.is_valid_checkpoint(good)
    truncated = save(tmp_path / "other", 9)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    assert not ckpt.is_valid_checkpoint(truncated)
    no_marker = save(tmp_path / "third", 12)
    no_marker.with_suffix(".json").unlink()
    assert not ckpt.is_valid_checkpoint(no_marker)


def test_find_latest_checkpoint_across_folders_skips_invalid_ones(tmp_path):
    work, previous = tmp_path / "work", tmp_path / "input" / "notebooks" / "me" / "run" / "model_output" / "checkpoints"
    save(work / "model_output" / "checkpoints", 30)
    save(previous, 50)
    assert ckpt.find_latest_checkpoint([work, tmp_path / "input"]).parent == previous
    # Damage the step-50 files (both names share the inode): the newest *valid* one is step 30.
    p50 = previous / "step-00000050.pt"
    p50.write_bytes(p50.read_bytes()[:100])
    found = ckpt.find_latest_checkpoint([work, tmp_path / "input"])
    assert torch.load(found, weights_only=True)["step"] == 30
    assert ckpt.find_latest_checkpoint([tmp_path / "missing"]) is None


def test_load_and_shape_errors(tmp_path):
    path = save(tmp_path, 3)
    loaded = ckpt.load_checkpoint(tmp_path)  # a folder: its newest valid checkpoint
    assert loaded["step"] == 3
    ckpt.check_shape(loaded, {"n_layer": 2}, path)
    with pytest.raises(UserError, match=r"different model shape: n_layer 2 \(checkpoint\) vs 4 \(config\); to continue "
                                        r"it, run with the checkpoint's model settings; .* pass --resume none"):
        ckpt.check_shape(loaded, {"n_layer": 4}, path)
    with pytest.raises(UserError, match=r"n_layer 2 \(checkpoint\) vs 4 \(config\); to continue it, run with --preset "
                                        r"small; to start a new model instead, pass --resume none$"):
        ckpt.check_shape(loaded | {"config": {"model": {"preset": "small"}}}, {"n_layer": 4}, path)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="not a fastpack trainer checkpoint"):
        ckpt.load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a readable checkpoint"):
        ckpt.load_checkpoint(tmp_path / "junk.pt")


def test_remove_after_drops_an_abandoned_continuation(tmp_path):
    for step in (10, 20, 30):
        save(tmp_path, step, keep=5, best=step == 30)
    ckpt.remove_after(tmp_path, 10, log=lambda m: None)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["best.pt", "step-00000010.pt"]


def test_a_checkpoint_is_hashed_once_while_unchanged_and_its_hash_travels_in_the_launch_file(tmp_path, monkeypatch):
    from trainer.launch import RunOptions, read_launch_file, write_launch_file
    from trainer.config import RunConfig

    monkeypatch.setattr(ckpt, "_checksums", {})
    hashed = []
    real = ckpt.file_sha256
    monkeypatch.setattr(ckpt, "file_sha256", lambda path, *a: hashed.append(path.name) or real(path, *a))
    pt = save(tmp_path, 5, size=10_000)
    assert ckpt.is_valid_checkpoint(pt) and ckpt.is_valid_checkpoint(pt)
    assert hashed == [pt.name] * 2  # just written: not remembered (a change in the same mtime tick would go unseen)
    hour_ago = pt.stat().st_mtime - 3600
    os.utime(pt, (hour_ago, hour_ago))
    hashed.clear()
    assert ckpt.is_valid_checkpoint(pt) and ckpt.is_valid_checkpoint(tmp_path / "last.pt")  # one file, two names
    assert hashed == [pt.name]
    with open(pt, "r+b") as f:  # changed in place: a new mtime, hashed again, and found out
        f.seek(pt.stat().st_size // 2)
        f.write(os.urandom(64))
    assert ckpt.checkpoint_problem(pt).startswith("checksum mismatch") and hashed == [pt.name] * 2

    # The ranks of a torchrun launch take over what the launching process hashed.
    os.utime(pt, (hour_ago - 60, hour_ago - 60))
    ckpt.checkpoint_problem(pt)
    options = RunOptions(root=tmp_path, packed_dir=tmp_path, output_dir=tmp_path / "out", resume=str(pt),
                         checksums=ckpt.known_checksums())
    _, received = read_launch_file(write_launch_file(RunConfig(), options))
    monkeypatch.setattr(ckpt, "_checksums", {})  # a new process
    ckpt.remember_checksums(received.checksums)
    hashed.clear()
    assert ckpt.checkpoint_problem(pt).startswith("checksum mismatch") and hashed == []
