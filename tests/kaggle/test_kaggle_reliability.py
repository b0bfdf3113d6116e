"""The Kaggle runner on a full disk and on a write it is not allowed (both injected): one line, exit 2, no
traceback; and resuming over a corrupt checkpoint, each checkpoint hashed once."""
import os
import sys
import time
from collections import Counter
from pathlib import Path

from kaggle_helpers import FAST, run

sys.path.insert(0, str(Path(__file__).parents[1]))
from fault_helpers import temps_under  # noqa: E402


def test_a_full_disk_and_a_permission_error_are_one_line(kaggle):
    input_root, _, work = kaggle
    for fault, fragments in (("enospc:train.npy", ("disk full writing", "train.npy", "MB free there")),
                             ("eacces:*.pt", ("Permission denied",))):
        proc = run("trainer.kaggle_entry", "--input-root", input_root, "--work-dir", work, "--pack-dir", work / "packed",
                   *FAST, "--max-steps", 2, env={"FASTPACK_FAULT": fault})
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and all(f in errors[0] for f in fragments), proc.stderr[-2000:]
        assert temps_under(work) == []


def test_resume_names_a_corrupt_checkpoint_and_hashes_each_one_once(kaggle, monkeypatch, capsys):
    """The runner picks the checkpoint (find_resume) and the trainer checks it again: one sha256 pass per file
    all the same (a 1.5 GB checkpoint takes seconds to hash), and the corrupt one is named and moved aside."""
    from trainer import checkpoint as ckpt
    from trainer import kaggle_entry

    input_root, _, work = kaggle
    args = ["--input-root", input_root, "--work-dir", work, *FAST, "--nproc", 1]
    first = run("trainer.kaggle_entry", *args, "--max-steps", 4)
    assert first.returncode == 0, first.stdout + first.stderr
    folder = work / "model_output" / "checkpoints"
    with open(folder / "last.pt", "r+b") as f:  # also step-4, its hard link: same size, bytes changed
        f.seek(f.seek(0, os.SEEK_END) // 2)
        f.write(os.urandom(300))
    hour_ago = time.time() - 3600  # from an earlier session, as on Kaggle (a file changed just now is always re-hashed)
    for pt in folder.glob("*.pt"):
        os.utime(pt, (hour_ago, hour_ago))
    step2 = (folder / "step-00000002.pt").stat().st_ino
    hashed = Counter()
    real = ckpt.file_sha256
    monkeypatch.setattr(ckpt, "file_sha256", lambda path, *a: hashed.update([os.stat(path).st_ino]) or real(path, *a))
    assert kaggle_entry.main([*map(str, args), "--max-steps", "6"]) == 0
    out = capsys.readouterr().out
    assert f"resume: skipped {folder / 'step-00000004.pt'}: checksum mismatch" in out
    assert "moved aside to step-00000004.pt.unreadable" in out
    assert f"resumed from {folder / 'step-00000002.pt'} at step 2" in out
    assert hashed[step2] == 1 and set(hashed.values()) == {1}, hashed  # step-4 (and last, the same file), step-2
