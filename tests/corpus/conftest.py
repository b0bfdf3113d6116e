"""Shared corpus fixtures: one small generated sample, prepared once per session (SentencePiece trains once)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastpack.config import Config

PROJECT = Path(__file__).resolve().parents[2]
SMALL_MB = 0.2  # ~14 files, ~80 documents: enough for 12 groups and a 1000-piece vocabulary
SMALL_VOCAB = 1000


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m fastpack.corpus ARGS` in a fresh interpreter, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.run([sys.executable, "-m", "fastpack.corpus", *args], cwd=cwd or PROJECT, env=env,
                          capture_output=True, text=True, timeout=300)


def small_config(raw: Path, **tokenizer) -> Config:
    config = Config().replace("paths", raw_dir=str(raw)).replace("tokenizer", vocab_size=SMALL_VOCAB, **tokenizer)
    return config


@pytest.fixture(scope="session")
def cli():
    """`cli("all", "--root", ...)`: the command line in a subprocess."""
    return run_cli


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> tuple[Path, Config]:
    """A data root with every output of `prepare_corpus` on the small sample (read-only for tests)."""
    from fastpack.corpus import prepare_corpus, write_sample_corpus

    root = tmp_path_factory.mktemp("prepared")
    write_sample_corpus(root / "raw", size_mb=SMALL_MB)
    config = small_config(root / "raw")
    prepare_corpus(config, root, workers=2)
    return root, config
