"""Helpers shared by the Kaggle runner tests."""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FAST = ["--preset", "tiny", "--seq-len", "64", "--set", "training.batch_size=4", "--set", "training.grad_accum=1",
        "--set", "training.eval_interval=1000", "--set", "training.eval_batches=2", "--set", "training.num_workers=0",
        "--set", "training.checkpoint_interval=2", "--set", "training.warmup_steps=2",
        "--set", "training.log_interval=1", "--set", "training.test_batches=2"]


def skip_without_torch() -> None:
    """The runner checks for torch before anything else: on a packer-only install its tests skip, saying why."""
    if importlib.util.find_spec("torch") is None:
        pytest.skip("the Kaggle runner needs torch, which is not installed")


def run(module, *args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})), timeout=600)


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
