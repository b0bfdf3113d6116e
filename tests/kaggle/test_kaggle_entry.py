"""`python -m trainer.kaggle_entry` end to end on a small generated bundle (CPU, tiny model)."""
import json
import re
import shutil
import signal
import subprocess
import sys
import time

from kaggle_helpers import FAST, copy_tree, run, snapshot


def entry(input_root, work, *args):
    return run("trainer.kaggle_entry", "--input-root", input_root, "--work-dir", work, *FAST, *args)


def packed_seconds(stdout):
    """The runner's own timing of its pack step."""
    return float(re.search(r"pack every split into .*: ([0-9.]+) s", stdout).group(1))


def test_fresh_run_then_cached_pack_and_resume(kaggle):
    input_root, dataset, work = kaggle
    before = snapshot(input_root)
    first = entry(input_root, work, "--max-steps", 4, "--time-budget", "1h")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "time budget: stops by" in first.stdout and "from the runner's start" in first.stdout
    for step in ("locate the bundle", "verify it against its manifest", "pack every split", "train"):
        assert f"==> {step}" in first.stdout
    assert "val perplexity" in first.stdout and "test perplexity" in first.stdout
    packed = work / "packed"
    assert {p.name for p in packed.glob("*.npy")} == {"train.npy", "val.npy", "test.npy"}
    summary = json.loads((work / "model_output" / "summary.json").read_text())
    assert summary["step"] == 4
    # The budget counts from the runner's start: before the pack, not from the training's own start.
    train_start = summary["finished_at"] - summary["session_seconds"]
    assert summary["deadline"] - 3600 < train_start - packed_seconds(first.stdout)
    second = entry(input_root, work, "--max-steps", 6)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.count("up to date") == 3  # the pack cache: no re-pack
    assert "resuming from" in second.stdout and "at step 4" in second.stdout + second.stderr
    assert json.loads((work / "model_output" / "summary.json").read_text())["step"] == 6
    assert snapshot(input_root) == before  # nothing written under the dataset root


def test_run_killed_after_an_evaluation_keeps_its_outputs_and_resumes(kaggle):
    input_root, dataset, work = kaggle
    cmd = [sys.executable, "-m", "trainer.kaggle_entry", "--input-root", str(input_root), "--work-dir", str(work),
           *map(str, FAST), "--max-steps", "40", "--set", "training.checkpoint_interval=1",
           "--set", "training.eval_interval=2", "--set", "training.sample_tokens=4"]
    log = work.parent / "runner.log"  # what the runner printed, for the assertion messages
    with open(log, "wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
    out = work / "model_output"
    checkpoints, summary_path = out / "checkpoints", out / "summary.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not (
            list(checkpoints.glob("step-*.json")) and summary_path.is_file()):
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)  # Kaggle's 12 h limit: no signal a handler could catch
    proc.wait()
    markers = sorted(checkpoints.glob("step-*.json"))
    assert markers, f"no checkpoint was written before the kill (exit {proc.returncode}):\n{log.read_text()[-3000:]}"
    killed_at = max(json.loads(m.read_text())["step"] for m in markers)
    assert killed_at < 40
    summary = json.loads(summary_path.read_text())  # whole: written by rename
    assert summary["status"] == "partial" and summary["partial"] is True and summary["stop_reason"] is None
    assert summary["step"] >= 2 and summary["step"] % 2 == 0 and summary["val_loss"] > 0
    assert summary["checkpoints"]["last"] is None or summary["checkpoints"]["last"].endswith("last.pt")
    import matplotlib.image

    assert matplotlib.image.imread(out / "loss.png").shape[2] in (3, 4)  # a whole, decodable PNG
    assert "=== step 2 ===" in (out / "samples.txt").read_text(encoding="utf-8")
    again = entry(input_root, work, "--max-steps", 40)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming from" in again.stdout
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()
             if '"loss"' in line]
    assert steps[-1] == 40 and min(s for s in steps if s > killed_at) == killed_at + 1
    final = json.loads(summary_path.read_text())
    assert final["status"] == "completed" and "partial" not in final and final["step"] == 40


def test_previous_run_output_attached_as_input_is_resumed(kaggle, tmp_path):
    input_root, dataset, work = kaggle
    assert entry(input_root, work, "--max-steps", 2).returncode == 0
    copy_tree(work / "model_output", input_root / "notebooks" / "someone" / "previous-run" / "model_output")
    new_work = tmp_path / "next-session"
    proc = entry(input_root, new_work, "--max-steps", 4)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "a previous run's output" in proc.stdout
    assert json.loads((new_work / "model_output" / "summary.json").read_text())["step"] == 4


def test_tampered_bundle_fails_verification_naming_the_file(kaggle):
    input_root, dataset, work = kaggle
    target = dataset / "dataset" / "tokenized" / "val_tokens.jsonl"
    data = bytearray(target.read_bytes())
    data[10] ^= 1
    target.write_bytes(bytes(data))
    proc = entry(input_root, work, "--verify", "full", "--skip-train")
    assert proc.returncode == 2 and "val_tokens.jsonl" in proc.stderr and "Traceback" not in proc.stderr
    target.write_bytes(bytes(data[:-5]))
    proc = entry(input_root, work, "--skip-train")  # size check, the default
    assert proc.returncode == 2 and "val_tokens.jsonl" in proc.stderr


def test_nested_dataset_root_is_found_and_two_bundles_are_refused(kaggle):
    input_root, dataset, work = kaggle
    nested = input_root / "datasets" / "someone" / "zipped-upload" / "kaggle_bundle"
    shutil.move(str(dataset), str(nested))
    proc = entry(input_root, work, "--skip-train")
    assert proc.returncode == 0 and f"bundle: {nested}" in proc.stdout, proc.stdout + proc.stderr
    proc = entry(input_root, work, "--skip-train", "--dataset-root", input_root / "datasets" / "someone")
    assert proc.returncode == 0, proc.stderr
    copy_tree(nested, input_root / "other")
    proc = entry(input_root, work, "--skip-train")
    assert proc.returncode == 2 and "2 bundles" in proc.stderr and "--dataset-root" in proc.stderr


def test_missing_pad_id_for_padded_modes_is_explained(kaggle):
    input_root, dataset, work = kaggle
    info = dataset / "tokenizer" / "tokenizer_info.json"
    data = json.loads(info.read_text())
    data["pad_id"] = -1
    info.write_text(json.dumps(data))
    proc = entry(input_root, work, "--skip-train", "--verify", "none", "--mode", "bestfit")
    assert proc.returncode == 2 and "--pad-id" in proc.stderr
    proc = entry(input_root, work, "--skip-train", "--verify", "none", "--mode", "bestfit", "--pad-id", "1")
    assert proc.returncode == 0, proc.stderr


def test_bestfit_windows_train_with_document_attention_and_pass_the_audit(kaggle):
    input_root, dataset, work = kaggle
    proc = entry(input_root, work, "--mode", "bestfit", "--max-steps", 2, "--set", "training.document_attention=true",
                 "--set", "training.loss_on_overlap=false")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bestfit" in json.loads((work / "packed" / "train.meta.json").read_text())["mode"]
    audit = run("fastpack", "audit", work / "packed" / "train.npy")
    assert audit.returncode == 0 and "audit passed" in audit.stdout, audit.stdout + audit.stderr


def test_a_missing_dependency_names_the_bundle_command_for_this_python(monkeypatch, capsys):
    from trainer import kaggle_entry

    monkeypatch.setattr(kaggle_entry, "DEPENDENCIES", ("numpy", "no_such_package_here"))
    assert kaggle_entry.main(["--skip-train"]) == 2
    err = capsys.readouterr().err
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert err.startswith("error: missing Python packages: no_such_package_here;")
    assert f"python -m bundle --include-deps no_such_package_here --python-version {version}" in err
