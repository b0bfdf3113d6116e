"""The Kaggle runner on a full disk and on a write it is not allowed (both injected): one line, exit 2, no traceback."""
import sys
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
