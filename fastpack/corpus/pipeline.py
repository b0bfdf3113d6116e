"""`all`: clean -> split -> tokenizer -> tokenize, each stage skipped when its outputs are up to date."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from fastpack.config import Config
from fastpack.corpus.build import StageResult
from fastpack.corpus.clean import clean_corpus
from fastpack.corpus.encode import tokenize_splits
from fastpack.corpus.split import split_corpus
from fastpack.corpus.tokenizer import train_tokenizer


def prepare_corpus(config: Config, root: str | Path, *, force: bool = False, show_progress: bool = False,
                   workers: Optional[int] = None, log: Optional[Callable[[str], None]] = None) -> list[StageResult]:
    """Run every stage in order; `log` gets each stage's one-line message as it finishes."""
    stages = (
        lambda: clean_corpus(config, root, workers=workers, force=force, show_progress=show_progress),
        lambda: split_corpus(config, root, force=force, show_progress=show_progress),
        lambda: train_tokenizer(config, root, force=force, show_progress=show_progress),
        lambda: tokenize_splits(config, root, workers=workers, force=force, show_progress=show_progress),
    )
    results = []
    for stage in stages:
        results.append(stage())
        if log is not None:
            log(results[-1].message)
    return results
