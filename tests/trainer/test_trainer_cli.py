"""The command lines as a user runs them (subprocesses): errors as one line with exit 2, a 2-process
gloo DDP run under torchrun, and sampling from its checkpoint."""
import json
import os
import subprocess
import sys

import numpy as np

from trainer.config import load_config
from trainer.checkpoint import is_valid_checkpoint
from trainer.train_lm import run_training

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli(module, *args, timeout=240):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def train_cli(root, *args, **kwargs):
    return cli("trainer.train_lm", "--config", root / "config" / "training_config.json", "--preset", "tiny",
               "--nproc", "1", *args, **kwargs)


def assert_one_line_error(result, pattern):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    import re

    assert re.search(pattern, lines[0]), lines[0]


def test_missing_packed_split(lm_root, tmp_path):
    result = train_cli(lm_root, "--packed-dir", tmp_path / "empty", "--output-dir", tmp_path / "out")
    assert_one_line_error(result, r"empty: no packed train split .*pack it first")
    assert not (tmp_path / "out").exists()


def test_missing_tokenizer(lm_root, tmp_path):
    (lm_root / "tokenizer" / "tokenizer_info.json").unlink()
    result = train_cli(lm_root, "--output-dir", tmp_path / "out")
    assert_one_line_error(result, r"tokenizer_info.json: tokenizer info not found \(paths.tokenizer_dir")


def test_seq_len_of_the_data_differs_from_the_model_context(lm_root, tmp_path):
    result = train_cli(lm_root, "--output-dir", tmp_path / "out", "--set", "packing.seq_len=64")
    assert_one_line_error(result, r"train.meta.json: windows of seq_len 32, but the model's context is 64")


def test_token_id_beyond_the_vocabulary(lm_root, tmp_path, helpers):
    windows = np.load(lm_root / "dataset/packed/train.npy")
    windows[3, 5] = 99  # the tokenizer has 34 pieces; the meta has no vocab_size, so the data is scanned
    helpers.write_packed(tmp_path / "packed", "train", windows, vocab_size=None)
    result = train_cli(lm_root, "--packed-dir", tmp_path / "packed", "--output-dir", tmp_path / "out")
    assert_one_line_error(result, r"train.npy: token id 99 >= the vocabulary size 34")


def test_checkpoint_of_another_model_shape(lm_root, tmp_path):
    config = load_config(lm_root / "config" / "training_config.json", ["training.max_steps=2"])
    run_training(config, root=lm_root, output_dir=tmp_path / "out", nproc=1, log=lambda m: None)
    result = train_cli(lm_root, "--output-dir", tmp_path / "out", "--resume", "auto", "--set", "model.n_layer=3")
    assert_one_line_error(result, r"step-00000002.pt: checkpoint of a different model shape: n_layer 2 \(checkpoint\) vs 3 \(config\); "
                                r"to continue it, run with --preset tiny; to start a new model instead, pass --resume none")
    result = train_cli(lm_root, "--output-dir", tmp_path / "out", "--time-budget", "3x")
    assert_one_line_error(result, r"--time-budget: expected seconds or a duration like 11h30m")


def test_two_process_gloo_ddp_run_matches_one_process_and_samples(lm_root, tmp_path):
    common = ["--set", "training.max_steps=8", "--set", "training.eval_interval=4", "--set", "training.log_interval=1"]
    # 2 ranks x 4 windows read the same global batches as 1 process x 8 windows.
    ddp = train_cli(lm_root, "--output-dir", tmp_path / "ddp", "--nproc", "2", "--set", "training.batch_size=4", *common)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    out = tmp_path / "ddp"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["step"] == 8 and summary["tokens_seen"] == 8 * 2 * 4 * 32
    for name in ("metrics.jsonl", "loss.png", "samples.txt", "run_config.json", "summary.json"):
        assert (out / name).is_file(), name
    assert is_valid_checkpoint(out / "checkpoints" / "last.pt")
    assert not list(out.glob(".launch_config-*"))  # the relaunch's temp config is gone
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    ddp_losses = [r["loss"] for r in records if "loss" in r]
    assert len(ddp_losses) == 8  # rank 0 alone writes: no duplicated records
    assert ddp.stdout.count("step 8/8") == 1

    single = train_cli(lm_root, "--output-dir", tmp_path / "single", "--set", "training.batch_size=8", *common)
    assert single.returncode == 0, single.stderr[-3000:]
    single_losses = [json.loads(line)["loss"] for line in (tmp_path / "single/metrics.jsonl").read_text().splitlines()
                     if '"loss"' in line]
    assert np.allclose(ddp_losses, single_losses, rtol=1e-4, atol=1e-5)

    sample = cli("trainer.generate", "--checkpoint", out / "checkpoints" / "last.pt", "--prompt", "the cat",
                 "--max-tokens", "5", "--seed", "1")
    assert sample.returncode == 0, sample.stderr
    assert sample.stdout.startswith("the cat")


def run_until(command, env, timeout, logs):
    """Run `command`; past `timeout`, stop it and fail: ranks that disagree hang in a collective, and a hang
    must read as a failure. SIGTERM to its process group reaches torchrun, which stops the ranks (they run
    in sessions of their own); the output goes to files, which a stray rank cannot hold open."""
    import signal
    import time

    out, err = logs / "stdout.txt", logs / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=stdout, stderr=stderr, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            for _ in range(600):  # torchrun stops its ranks, then exits with the rest of the group
                try:
                    os.killpg(proc.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"no exit within {timeout}s (ranks hung?):\n{err.read_text()[-3000:]}") from None
    return subprocess.CompletedProcess(command, proc.returncode, out.read_text(), err.read_text())


def test_ddp_ranks_stop_together_on_the_time_budget(lm_root, tmp_path):
    from trainer.budget import FAKE_CLOCK_ENV, FAKE_EPOCH

    # Every process reads a clock that advances 0.1 s per reading, the ranks' starting 5 s after the
    # launching process's (torchrun's start-up): the budget runs out at the same step however busy the machine.
    budget, launch = 20, 5
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO, **{FAKE_CLOCK_ENV: f"0.1:{launch}"})
    command = [sys.executable, "-m", "trainer.train_lm", "--config", str(lm_root / "config" / "training_config.json"),
               "--preset", "tiny", "--output-dir", str(tmp_path / "out"), "--nproc", "2", "--time-budget", f"{budget}s",
               "--set", "training.max_steps=1000000", "--set", "training.eval_interval=10",
               "--set", "training.log_interval=100", "--set", "training.batch_size=4"]
    result = run_until(command, env, 300, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["stop_reason"] == "time_budget" and summary["world_size"] == 2 and summary["step"] >= 1
    assert summary["checkpoints"]["last"] and is_valid_checkpoint(summary["checkpoints"]["last"])
    import torch

    last = torch.load(summary["checkpoints"]["last"], weights_only=True)
    assert last["step"] == summary["step"] and len(last["rng"]) == 2  # both ranks joined the final save
    # The budget counts from run_training's start in the launching process, not from the ranks' own start.
    assert summary["deadline"] == FAKE_EPOCH + budget
    ranks_started = summary["finished_at"] - summary["session_seconds"]
    assert FAKE_EPOCH + launch <= ranks_started < FAKE_EPOCH + launch + 1
    assert summary["finished_at"] < summary["deadline"]
    assert result.stdout.count("time budget: stopping at step") == 1
    assert f"time budget: stopping at step {summary['step']} " in result.stdout


def test_trainer_imports_stay_light_and_public_names_resolve():
    code = ("import sys, trainer, trainer.train_lm, trainer.generate; "
            "[getattr(trainer, n) for n in trainer.__all__]; "
            "assert 'numba' not in sys.modules, 'numba imported'; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
