"""What one training checkpoint costs (seconds to save, bytes on disk) for each model preset, on this machine.

    python -m benchmarks.checkpoint_cost [--presets small base] [--vocab 32000] [--seq-len 1024] [--dir DIR]

The state is the trainer's: model + AdamW moments (after one step, so they exist) + the rest, saved
with trainer.checkpoint.save_checkpoint (temp file, fsync, rename, marker). Used to choose
training.checkpoint_minutes: a kill loses at most the interval plus one save.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def measure(preset: str, vocab: int, seq_len: int, folder: Path, rounds: int = 2) -> dict:
    import torch

    from trainer.config import ModelConfig
    from trainer import checkpoint as ckpt
    from trainer.model import GPT, resolve_model_args

    args = resolve_model_args(ModelConfig(preset=preset), vocab_size=vocab, context_len=seq_len)
    model = GPT(args)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    state = {"format": ckpt.FORMAT, "version": ckpt.VERSION, "step": 1, "model": model.state_dict(),
             "optimizer": optimizer.state_dict(), "model_args": args.to_dict(), "rng": [{"torch": torch.get_rng_state()}],
             "config": {"model": {"preset": preset}}}
    times = []
    for r in range(rounds):
        state["step"] = r + 1
        t0 = time.perf_counter()
        path = ckpt.save_checkpoint(state, folder / preset, is_best=False, keep=1, max_bytes=1e15, log=lambda m: None)
        times.append(time.perf_counter() - t0)
    return {"preset": preset, "parameters": sum(p.numel() for p in model.parameters()),
            "bytes": path.stat().st_size, "save_s": min(times), "save_runs_s": times}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["small", "base"])
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--dir", type=Path, help="where to write (default: a temp folder, removed)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(dir=a.dir) as tmp:
        for preset in a.presets:
            print(json.dumps(measure(preset, a.vocab, a.seq_len, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
