"""run_training in-process on the tiny preset (CPU, fp32): learning, outputs, exact resume, time budget."""
import json
import math
import time

import numpy as np
import pytest
import torch

from trainer.config import load_config
from fastpack.errors import UserError
from trainer.checkpoint import find_latest_checkpoint, is_valid_checkpoint
from trainer.train_lm import run_training


def train(root, out, config=None, **kwargs):
    config = config or load_config(root / "config" / "training_config.json")
    logs = []
    summary = run_training(config, root=root, output_dir=root / out, nproc=1, log=logs.append, **kwargs)
    return summary, logs


def records(root, out):
    return [json.loads(line) for line in (root / out / "metrics.jsonl").read_text().splitlines()]


def test_tiny_model_learns_the_repetitive_corpus_and_writes_every_output(lm_root):
    summary, logs = train(lm_root, "out")
    # The threshold: a model that ignores context cannot go below the unigram entropy of the corpus
    # (about 3 nats here); the documents repeat in a fixed cycle, so with context the next token is
    # (nearly) determined and the loss can go towards 0. Below 0.5 nats means it uses the context.
    train_ids = np.load(lm_root / "dataset/packed/train.npy").ravel()
    freq = np.bincount(train_ids) / len(train_ids)
    unigram_entropy = -sum(p * math.log(p) for p in freq if p > 0)
    assert unigram_entropy > 2.5
    rec = records(lm_root, "out")
    val = [r["val_loss"] for r in rec if "val_loss" in r]
    assert len(val) == 3 and val[0] > val[1] > val[2]  # evals at 20, 40, 60: falling
    assert summary["val_loss"] < 0.5 and summary["train_loss"] < 0.5 and summary["test_loss"] < 0.5
    assert rec[0]["loss"] > 3.0  # it started near uniform (ln 34 = 3.5)
    assert summary["stop_reason"] == "max_steps" and summary["step"] == 60 and summary["tokens_seen"] == 60 * 8 * 32
    out = lm_root / "out"
    for name in ("metrics.jsonl", "loss.png", "samples.txt", "run_config.json", "summary.json"):
        assert (out / name).is_file(), name
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_config(out / "run_config.json") == load_config(lm_root / "config" / "training_config.json")
    assert (out / "samples.txt").read_text().count("[the cat] the cat") == 3
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert is_valid_checkpoint(out / "checkpoints" / "last.pt") and is_valid_checkpoint(out / "checkpoints" / "best.pt")
    first = rec[0]
    assert set(first) >= {"step", "loss", "lr", "grad_norm", "tokens_per_s", "tokens_seen"}


def test_n_steps_straight_equal_half_resume_half(lm_root):
    # Dropout and gradient accumulation on, evals in between: all must continue exactly.
    config = load_config(lm_root / "config" / "training_config.json",
                         ["model.dropout=0.1", "training.grad_accum=2", "training.max_steps=12", "training.eval_interval=4"])
    train(lm_root, "straight", config)
    first, _ = train(lm_root, "halves", config, stop_at_step=6)
    assert first["stop_reason"] == "stop_at_step" and first["step"] == 6
    second, logs = train(lm_root, "halves", config, resume="auto")
    assert second["resumed_from"].endswith("step-00000006.pt") and any("resumed from" in m for m in logs)

    def losses(out):
        # Train losses of every step, val losses of the periodic evals (a session's last eval at step 6 aside).
        return [(r["step"], r.get("loss"), r.get("val_loss")) for r in records(lm_root, out)
                if "loss" in r or ("val_loss" in r and r["step"] % 4 == 0)]

    assert losses("straight") == losses("halves")  # bit-identical floats, every step
    assert len([s for s, loss, _ in losses("halves") if loss is not None]) == 12
    a = torch.load(lm_root / "straight/checkpoints/last.pt", weights_only=True)
    b = torch.load(lm_root / "halves/checkpoints/last.pt", weights_only=True)
    assert a["step"] == b["step"] == 12 and a["data_position"] == b["data_position"] == 12 * 2 * 8
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for pa, pb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert torch.equal(a["rng"][0]["torch"], b["rng"][0]["torch"])


class ModelClock:
    """Time on a modeled machine: a training step takes `step_s`, anything else `read_s` per clock reading.

    The time the budget sees is then the same on a loaded CI machine as on an idle one: the test
    asserts the budget's decisions, not wall-clock timings.
    """

    def __init__(self, start: float = 1_000_000.0, step_s: float = 0.1, read_s: float = 0.0001) -> None:
        self.now, self.step_s, self.read_s = start, step_s, read_s

    def __call__(self) -> float:
        self.now += self.read_s
        return self.now


def _budgeted_run(lm_root, out, monkeypatch):
    from trainer.loop import Trainer

    clock = ModelClock()
    real_step = Trainer.train_step

    def timed_step(self, *args, **kwargs):
        clock.now += clock.step_s  # the step's cost, inside the interval the loop measures
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train_step", timed_step)
    config = load_config(lm_root / "config" / "training_config.json",
                         ["training.max_steps=100000", "training.eval_interval=20", "training.log_interval=50"])
    return train(lm_root, out, config, time_budget=8.0, clock=clock)


def test_time_budget_stops_early_with_a_valid_checkpoint(lm_root, monkeypatch):
    summary, logs = _budgeted_run(lm_root, "budget", monkeypatch)
    assert summary["stop_reason"] == "time_budget" and 60 < summary["step"] < 80
    # It used the budget and stopped before its end, keeping back the next step (0.1 s), a checkpoint and
    # the final evaluations (measured at the evals every 20 steps), padded by 1.5, and a 1 s margin.
    assert summary["deadline"] - 1.5 < summary["finished_at"] < summary["deadline"]
    latest = find_latest_checkpoint([lm_root / "budget"])
    assert latest is not None and torch.load(latest, weights_only=True)["step"] == summary["step"]
    assert summary["test_loss"] is not None  # the final evaluation was budgeted for
    assert any(m.startswith("time budget: stopping at step") for m in logs)
    # The same run again takes the same decisions: nothing depends on how busy the machine was.
    again, _ = _budgeted_run(lm_root, "budget-again", monkeypatch)
    assert (again["step"], again["finished_at"]) == (summary["step"], summary["finished_at"])


def test_periodic_checkpoints_by_time_and_a_fresh_start_refusing_existing_ones(lm_root):
    config = load_config(lm_root / "config" / "training_config.json",
                         ["training.max_steps=5", "training.checkpoint_minutes=1e-9", "training.keep_checkpoints=2"])
    _, logs = train(lm_root, "timed", config)
    assert sum(m.startswith("checkpoint step-") for m in logs) == 5  # one per step, by the clock
    assert sorted(p.name for p in (lm_root / "timed/checkpoints").glob("step-*.pt")) == ["step-00000004.pt", "step-00000005.pt"]
    with pytest.raises(UserError, match="already holds checkpoints.*--resume auto"):
        train(lm_root, "timed", config, resume="none")
    again, _ = train(lm_root, "timed", config, resume="auto")  # already at max_steps: evaluates, trains nothing
    assert again["step"] == 5 and again["resumed_from"].endswith("step-00000005.pt")


def test_document_attention_and_overlap_masking_train_end_to_end(lm_root, helpers, sp_model_file):
    packed = lm_root / "dataset" / "packed_overlap"
    stream = helpers.token_stream(sp_model_file, 300)
    windows = helpers.windows_of(stream, stride=24)
    # Per window, the lengths of its document runs (cut at each eos), as the packer's sidecar has them.
    segments = []
    for w in windows:
        ends = [i + 1 for i, t in enumerate(w) if t == helpers.EOS]
        cuts = [0] + ends + ([len(w)] if not ends or ends[-1] != len(w) else [])
        segments.append([b - a for a, b in zip(cuts, cuts[1:])])
    for name in ("train", "val"):
        helpers.write_packed(packed, name, windows, stride=24, segments=segments, vocab_size=64)
    config = load_config(lm_root / "config" / "training_config.json",
                         ["training.max_steps=40", "training.document_attention=true", "training.loss_on_overlap=false"])
    summary, logs = train(lm_root, "docs", config, packed_dir=packed)
    assert any("(sliding window)" in m for m in logs)  # val has stride < seq_len: scored once per token
    val = [r["val_loss"] for r in records(lm_root, "docs") if "val_loss" in r]
    assert val[-1] < val[0] and summary["test_loss"] is None  # no test split there: skipped
