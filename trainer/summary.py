"""The final summary (summary.json, and run_training's return value): where the run stopped and how well it did."""
from __future__ import annotations

import math
from typing import Any, Optional


from trainer.mfu import mfu
from trainer.outputs import perplexity

def throughput(trainer) -> dict[str, Any]:
    """Tokens/s of this session's training steps (evals, samples and checkpoints excluded), FLOP/s and MFU."""
    tok_s = trainer.session_tokens / trainer.session_train_s if trainer.session_train_s > 0 else None
    flops = trainer.flops_per_token * tok_s if tok_s else None
    return {"tokens_per_s": tok_s, "model_flops_per_s": flops,
            "mfu": mfu(tok_s, trainer.flops_per_token, trainer.peak_flops, trainer.dist.world_size),
            "peak_flops_per_device": trainer.peak_flops}


def build_summary(trainer, stop_reason: str, test_loss: Optional[float]) -> dict[str, Any]:
    info, t, p = trainer.dist, trainer.config.training, trainer.progress
    last, best = trainer.ckpt_dir / "last.pt", trainer.ckpt_dir / "best.pt"
    return {
        "status": "completed" if stop_reason == "max_steps" else "stopped",
        "stop_reason": stop_reason,
        "step": p.step,
        "max_steps": t.max_steps,
        "tokens_seen": p.tokens_seen,
        "train_loss": p.last_loss,
        "val_loss": p.last_val,
        "val_ppl": perplexity(p.last_val),
        "best_val_loss": None if math.isinf(p.best_val) else p.best_val,
        "test_loss": test_loss,
        "test_ppl": perplexity(test_loss),
        "session_seconds": trainer.clock() - trainer.session_start,
        "train_seconds": p.train_seconds,
        "deadline": trainer.options.deadline,  # time.time() values: a time-budgeted run ends before its deadline
        "finished_at": trainer.clock(),
        **throughput(trainer),
        "parameters": trainer.n_params,
        "model": trainer.plan.model_args.to_dict(),
        "preset": trainer.config.model.preset,
        "tokens_per_step": trainer.tokens_per_step,
        "precision": trainer.precision.name,
        "device": trainer.device_name,
        "world_size": info.world_size,
        "resumed_from": trainer.resumed_from,
        "nonfinite_steps_skipped": trainer.guard.skipped,
        "reclaimed_temps": trainer.reclaimed.to_dict() if getattr(trainer, "reclaimed", None) else None,
        "checkpoints": {"last": str(last) if last.exists() else None, "best": str(best) if best.exists() else None},
        "output_dir": str(trainer.output_dir),
        "packed_dir": str(trainer.options.packed_dir),
    }


def fmt(value: Optional[float], digits: int = 4) -> str:
    """A loss or perplexity for a log line: n/a when missing or nan."""
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
