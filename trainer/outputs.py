"""What a run leaves in its output folder (rank 0 only).

    metrics.jsonl      one JSON object a line: train records {step, loss, lr, grad_norm, tokens_per_s,
                       tokens_seen, elapsed_s}, eval records {step, val_loss, val_ppl, eval_s},
                       the final {step, test_loss, test_ppl}
    loss.png           train and val loss against step (rewritten at each eval)
    samples.txt        text generated from training.sample_prompts after each eval
    run_config.json    the resolved config plus the run's facts (model shape, device, precision, data)
    summary.json       the final numbers and where everything is; until the end, a partial one
                       ("status": "partial") refreshed at every evaluation, so a killed session keeps it
    checkpoints/       see trainer.checkpoint
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

import orjson

from fastpack.atomic import atomic_path, write_json_atomic

METRICS = "metrics.jsonl"
LOSS_PNG = "loss.png"
SAMPLES = "samples.txt"
RUN_CONFIG = "run_config.json"
SUMMARY = "summary.json"


def perplexity(loss: Optional[float]) -> Optional[float]:
    if loss is None or math.isnan(loss):
        return None
    return math.exp(loss) if loss < 700 else float("inf")


class MetricsLog:
    """metrics.jsonl, and the loss curve kept in memory: the file is read once, at the start, not at every plot."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.curve: list[dict[str, Any]] = []  # step with loss and/or val_loss: what `plot_loss` draws

    def start(self, resume_step: Optional[int], previous: Optional[Path] = None) -> None:
        """Fresh run: empty the file. Resume: keep only records up to the resumed step (later ones are redone),
        taken from `previous` (the resumed run's metrics, Kaggle: the previous session's) when this folder has none."""
        source = previous if previous is not None and not self.path.exists() else self.path
        kept = []
        if resume_step is not None and source.is_file():
            for line in source.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut by a killed session
                if isinstance(record, dict) and record.get("step", 0) <= resume_step:
                    kept.append(line)
                    self._remember(record)
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("ab") as f:
            f.write(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
        self._remember(record)

    def _remember(self, record: dict[str, Any]) -> None:
        point = {k: record[k] for k in ("step", "loss", "val_loss") if record.get(k) is not None}
        if len(point) > 1 and "step" in point:
            self.curve.append(point)


def prepare_plotting():
    """matplotlib with the Agg backend (no display needed); pyplot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss(records: list[dict[str, Any]], path: Path) -> None:
    """Train and val loss curves."""
    plt = prepare_plotting()

    train = [(r["step"], r["loss"]) for r in records if r.get("loss") is not None]
    val = [(r["step"], r["val_loss"]) for r in records if r.get("val_loss") is not None]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train), label="train", linewidth=1)
    if val:
        ax.plot(*zip(*val), "o-", label="val", linewidth=1.5, markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def append_samples(path: Path, step: int, samples: list[tuple[str, str]]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(f"=== step {step} ===\n")
        for prompt, text in samples:
            f.write(f"[{prompt}] {text}\n")
        f.write("\n")


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    write_json_atomic(path, summary)


def write_partial_summary(path: Path, summary: dict[str, Any], val_loss: float) -> None:
    """The summary so far with the evaluation just made, marked partial: Kaggle's kill gives no signal to
    write one at the end."""
    best = summary.get("best_val_loss")
    write_json_atomic(path, {**summary, "val_loss": val_loss, "val_ppl": perplexity(val_loss),
                             "best_val_loss": val_loss if best is None or val_loss < best else best,
                             "status": "partial", "partial": True, "stop_reason": None,
                             "note": "written at an evaluation while training ran; the run did not finish (yet)"})
