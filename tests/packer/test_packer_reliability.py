"""`python -m fastpack` killed, run twice at once, on a full disk, re-packed over an old split."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from fault_helpers import assert_one_line_error, kill9, run, start_paused, temps_under  # noqa: E402

DOCS = [[1, 2, 3, 4, 5], [6, 7], [8, 9, 10, 11, 12, 13, 14]]


def _inputs(tmp_path, docs=DOCS):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"input_ids": d}) + "\n" for d in docs))
    return src


def pack_args(src, out, seq_len=4, *extra):
    return ("--input", src, "--output", out / "train.npy", "--seq-len", seq_len, "--eos-id", 0, *extra)


def test_a_killed_pack_leaves_no_final_file_and_the_next_run_reclaims_its_temps(tmp_path):
    pytest.importorskip("torch")  # its second run writes --format both
    src, out = _inputs(tmp_path), tmp_path / "out"
    kill9(start_paused("fastpack", *pack_args(src, out), fault="pause:train.npy"))  # temps complete on disk
    first = temps_under(out)
    assert len(first) == 4 and not (out / "train.meta.json").exists()  # the .npy and the sidecar's 3 columns
    kill9(start_paused("fastpack", *pack_args(src, out, 4, "--format", "both"), fault="pause:train.npy"))
    second = temps_under(out)
    assert second and not set(first) & set(second)  # the second run reclaimed the first one's
    proc = run("fastpack", *pack_args(src, out))
    assert proc.returncode == 0, proc.stderr
    assert f"reclaimed {len(second)} temp file(s) of killed runs" in proc.stdout
    assert temps_under(out) == [] and not list(out.glob(".*.lock"))
    assert np.load(out / "train.npy").shape == (4, 4)


def test_a_second_concurrent_pack_stops_naming_the_first_ones_pid(tmp_path):
    src, out = _inputs(tmp_path), tmp_path / "out"
    first = start_paused("fastpack", *pack_args(src, out), fault="pause:train.npy")
    try:
        second = run("fastpack", *pack_args(src, out, 2))
        assert_one_line_error(second, f"pid {first.pid}", "being written by another run", str(out / "train"))
    finally:
        kill9(first)
    assert run("fastpack", *pack_args(src, out, 2)).returncode == 0  # the kernel dropped the dead holder's lock
    assert np.load(out / "train.npy").shape[1] == 2


def test_a_force_repack_killed_before_its_swap_leaves_the_old_split_whole(tmp_path):
    src, out = _inputs(tmp_path), tmp_path / "out"
    assert run("fastpack", *pack_args(src, out)).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    kill9(start_paused("fastpack", *pack_args(src, out, 2, "--force"), fault="pause:train.docs.npz"))
    assert {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")} == before
    again = run("fastpack", *pack_args(src, out))
    assert "up to date" in again.stdout and "reclaimed" in again.stdout


def test_an_array_that_does_not_match_its_meta_is_not_up_to_date(tmp_path):
    src, out = _inputs(tmp_path), tmp_path / "out"
    assert run("fastpack", *pack_args(src, out)).returncode == 0
    # Killed in the middle of the swap: the new .npy (seq_len 2) is in place, the meta is still the old one.
    kill9(start_paused("fastpack", *pack_args(src, out, 2, "--force"), fault="pause:train.meta.json"))
    assert np.load(out / "train.npy").shape[1] == 2
    assert json.loads((out / "train.meta.json").read_text())["shape"][1] == 4
    again = run("fastpack", *pack_args(src, out))
    assert again.returncode == 0 and "up to date" not in again.stdout
    assert np.load(out / "train.npy").shape == (4, 4)
    # Same shape but another dtype is caught from the header alone.
    np.save(out / "train.npy", np.load(out / "train.npy").astype(np.int64))
    assert "up to date" not in run("fastpack", *pack_args(src, out)).stdout


def test_disk_full_and_no_permission_are_one_line_naming_the_file(tmp_path):
    src, out = _inputs(tmp_path), tmp_path / "out"
    full = run("fastpack", *pack_args(src, out), fault="enospc:train.npy")
    assert_one_line_error(full, "disk full writing", str(out / "train.npy"), "MB free there")
    denied = run("fastpack", *pack_args(src, out), fault="eacces:*.npz")
    assert_one_line_error(denied, str(out / "train.docs.npz"), "Permission denied")
    assert temps_under(out) == [] and not (out / "train.meta.json").exists()


def test_an_input_too_short_for_one_window_warns(tmp_path):
    src, out = _inputs(tmp_path, [[1, 2]]), tmp_path / "out"
    proc = run("fastpack", *pack_args(src, out, 8))
    assert proc.returncode == 0
    assert "warning: train: 0 windows" in proc.stderr and "--pad-last" in proc.stderr


def test_odd_arguments_are_one_line(tmp_path):
    src, out = _inputs(tmp_path), tmp_path / "out"
    out.mkdir()
    assert_one_line_error(run("fastpack", "--input", src, "--output", out, "--eos-id", 0), "an existing folder",
                          str(out / "train.npy"))
    assert_one_line_error(run("fastpack", *pack_args(src, out), "--threads", -2), "--threads must be >= 1")
    assert_one_line_error(run("fastpack", *pack_args(src, out), "--config", tmp_path), "a folder, expected a JSON file")
    assert list(out.iterdir()) == []


def test_audit_of_a_split_copied_under_a_new_name(tmp_path):
    src, out = _inputs(tmp_path), tmp_path / "out"
    assert run("fastpack", *pack_args(src, out)).returncode == 0
    copy = tmp_path / "copy"
    copy.mkdir()
    for suffix in (".npy", ".meta.json", ".docs.npz"):
        (copy / f"renamed{suffix}").write_bytes((out / f"train{suffix}").read_bytes())
    proc = run("fastpack", "audit", copy / "renamed.npy", "--input", src)
    assert proc.returncode == 0, proc.stderr
    (copy / "renamed.npy").unlink()
    assert_one_line_error(run("fastpack", "audit", copy / "renamed.npy", "--input", src), "renamed.npy", "train.npy")


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 64 KB tmpfs and a read-only one (needs root and mount rights; skipped elsewhere)."""
    full, ro = tmp_path / "full", tmp_path / "ro"
    full.mkdir(), ro.mkdir()
    mounted = []
    for where, options in ((full, "size=64k"), (ro, "size=64k,ro")):
        if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True).returncode:
            break
        mounted.append(where)
    try:
        if len(mounted) < 2:
            pytest.skip("cannot mount a tmpfs here (not root, or no mount rights)")
        yield full, ro
    finally:
        for where in mounted:
            subprocess.run(["umount", str(where)], capture_output=True)


def test_a_real_full_disk_and_a_real_read_only_folder(tmp_path, small_tmpfs):
    full, ro = small_tmpfs
    src = _inputs(tmp_path, [list(range(1, 30))] * 3000)  # ~350 KB of windows: more than the 64 KB disk
    proc = run("fastpack", *pack_args(src, full, 16))
    assert_one_line_error(proc, f"disk full writing {full / 'train.npy'}", "MB free there")
    assert list(full.iterdir()) == []  # every temp removed, even though closing them failed too
    proc = run("fastpack", *pack_args(src, ro, 16))
    assert_one_line_error(proc, str(ro), "Read-only file system")
