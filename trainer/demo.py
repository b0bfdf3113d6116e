"""`python -m trainer.demo`: the whole local-to-Kaggle flow on a generated sample, in a few minutes on CPU.

generate a sample corpus -> prepare it (`fastpack.corpus all`) -> bundle it (`python -m bundle --zip`)
-> unzip it read-only where Kaggle would mount it (<out>/kaggle/input/datasets/<owner>/<slug>/)
-> `trainer.kaggle_entry` (find, verify, pack, train the tiny preset) -> a generated sample.

Everything lands under --out (default ./demo); a second run reuses what is up to date.
"""
from __future__ import annotations

import argparse
import stat
import sys
import zipfile
from pathlib import Path
from typing import Optional, Sequence

from fastpack.errors import run_main

DATASET = Path("datasets") / "demo-user" / "vi-novels-sample"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainer.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("demo"), help="everything goes here (default ./demo)")
    p.add_argument("--steps", type=int, default=600, help="training steps (default 600: about a minute on 2 cores)")
    p.add_argument("--size-mb", type=float, default=3.0, help="size of the generated corpus")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_main(_run, argv)


def _run(argv: Optional[Sequence[str]]) -> int:
    from bundle.cli import main as bundle_main
    from fastpack.corpus import SAMPLE_VOCAB_SIZE
    from fastpack.corpus.cli import main as corpus_main
    from fastpack.errors import UserError
    from trainer import kaggle_entry
    from trainer.generate import main as generate_main

    args = build_parser().parse_args(argv)
    out = args.out.resolve()
    raw, data, bundle_dir = out / "raw", out / "data", out / "kaggle_bundle"
    _title("1/5 generate a sample corpus of Vietnamese novels")
    _check(corpus_main(["sample", "--out", str(raw), "--size-mb", str(args.size_mb)]))
    _title("2/5 prepare it: clean, split 90/5/5, train SentencePiece, tokenize")
    _check(corpus_main(["all", "--raw", str(raw), "--root", str(data), "--vocab-size", str(SAMPLE_VOCAB_SIZE)]))
    _title("3/5 bundle what Kaggle needs")
    _check(bundle_main(["--root", str(data), "--out", str(bundle_dir), "--include-reports", "--zip"]))
    _title("4/5 lay it out as Kaggle mounts an uploaded dataset (read-only)")
    input_root = out / "kaggle" / "input"
    mounted = _mount(bundle_dir.with_suffix(".zip"), input_root / DATASET)
    print(f"{mounted} (read-only)")
    _title("5/5 on 'Kaggle': python -m trainer.kaggle_entry --preset tiny --seq-len 128 ...")
    working = out / "kaggle" / "working"
    code = kaggle_entry.main([
        "--input-root", str(input_root), "--work-dir", str(working), "--preset", "tiny", "--seq-len", "128",
        "--max-steps", str(args.steps),
        "--set", "training.batch_size=16", "--set", "training.grad_accum=1", "--set", "training.warmup_steps=30",
        "--set", "training.lr=0.003", "--set", f"training.eval_interval={max(args.steps // 3, 1)}",
        "--set", "training.eval_batches=8", "--set", "training.num_workers=0",
    ])
    if code != 0:
        raise UserError(f"kaggle_entry failed with exit code {code}")
    _title("a sample from the trained model")
    _check(generate_main(["--checkpoint", str(working / "model_output" / "checkpoints"), "--prompt", "Chương 1",
                          "--max-tokens", "60", "--tokenizer", str(mounted / "tokenizer")]))
    print(f"\neverything is under {out}; on Kaggle the same runner takes the uploaded bundle (see README)")
    return 0


def _mount(zip_path: Path, target: Path) -> Path:
    """Unzip the bundle where Kaggle would mount it, and make it read-only like /kaggle/input."""
    if target.is_dir():
        _set_writable(target, True)
        import shutil

        shutil.rmtree(target)
    target.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(target)
    _set_writable(target, False)
    return target


def _set_writable(root: Path, writable: bool) -> None:
    bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    for p in [root, *root.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode | stat.S_IWUSR if writable else mode & ~bits)


def _check(code: int) -> None:
    if code:
        from fastpack.errors import UserError

        raise UserError(f"a step failed (exit {code}); its message is above")


def _title(text: str) -> None:
    print(f"\n### {text}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
