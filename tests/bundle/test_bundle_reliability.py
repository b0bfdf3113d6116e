"""`python -m bundle` killed mid-build, on a full disk, and built twice without a pinned time."""
from __future__ import annotations

import calendar
import json
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
from fault_helpers import assert_one_line_error, kill9, run, start_paused, temps_under  # noqa: E402


def test_two_builds_of_the_same_inputs_give_the_same_zip_bytes_by_default(kit, root, tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    for name in ("one", "two"):
        proc = run("bundle", "--root", root, "--out", tmp_path / name, "--zip", "--include-reports")
        assert proc.returncode == 0, proc.stderr
        time.sleep(1.1)  # a clock-based timestamp would now differ
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "one.zip") as zf:
        created = json.loads(zf.read("bundle_manifest.json"))["created"]
    newest = max(int(p.stat().st_mtime) for p in root.rglob("*") if p.is_file())
    assert calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ")) <= newest  # from the inputs, not the clock


def test_a_killed_build_leaves_its_old_bundle_and_the_next_build_reclaims_its_temps(kit, root, tmp_path):
    out = tmp_path / "kaggle_bundle"
    assert run("bundle", "--root", root, "--out", out, "--zip").returncode == 0
    before = kit.tree(out)
    zip_before = (tmp_path / "kaggle_bundle.zip").read_bytes()
    kill9(start_paused("bundle", "--root", root, "--out", out, "--zip", "--include-reports", fault="pause:kaggle_bundle"))
    left = temps_under(tmp_path)
    assert {p.name.split(".tmp-")[0] for p in left if p.parent == tmp_path} == {".kaggle_bundle", ".kaggle_bundle.zip"}
    assert kit.tree(out) == before and (tmp_path / "kaggle_bundle.zip").read_bytes() == zip_before
    again = run("bundle", "--root", root, "--out", out, "--zip")
    assert again.returncode == 0, again.stderr
    assert "note: reclaimed 2 temp file(s) of killed runs" in again.stdout
    assert temps_under(tmp_path) == []


def test_a_full_disk_while_bundling_is_one_line_and_leaves_nothing(kit, root, tmp_path):
    out = tmp_path / "kaggle_bundle"
    proc = run("bundle", "--root", root, "--out", out, "--zip", fault="enospc:kaggle_bundle")
    assert_one_line_error(proc, "disk full writing", str(out), "MB free there")
    assert temps_under(tmp_path) == [] and not out.exists()


def test_the_refusal_of_a_symlinked_folder_of_many_files_stays_short(kit, root, tmp_path):
    outside = tmp_path / "outside"
    for i in range(500):
        kit.write(outside / f"chapter-{i:04d}-with-a-long-name-to-make-the-line-long.txt", "x")
    (root / "notes").mkdir(exist_ok=True)
    (root / "notes" / "linked").symlink_to(outside)
    proc = run("bundle", "--root", root, "--out", tmp_path / "b", "--include-extra", "notes/linked/*")
    line = assert_one_line_error(proc, "refusing 500 path(s) that reach outside the data root", "and 495 more")
    assert len(line) < 2000


def test_a_build_killed_while_swapping_leaves_only_temps_the_next_build_reclaims(kit, root, tmp_path):
    out = tmp_path / "kaggle_bundle"
    assert run("bundle", "--root", root, "--out", out).returncode == 0
    # A kill between the swap's two renames: the old bundle moved aside (as a temp), the new one not in yet.
    kill9(start_paused("bundle", "--root", root, "--out", out, fault="pause:kaggle_bundle"))
    aside = temps_under(tmp_path)[0]
    out.rename(tmp_path / f".kaggle_bundle.tmp-{_dead_pid()}-0123abcd")
    again = run("bundle", "--root", root, "--out", out)
    assert again.returncode == 0 and "note: reclaimed 2 temp file(s) of killed runs" in again.stdout, again.stdout
    assert temps_under(tmp_path) == [] and (out / "bundle_manifest.json").is_file() and not aside.exists()


def _dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
