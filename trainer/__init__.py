"""trainer: a GPT trained from fastpack's memory-mapped packed windows.

`run_training` (trainer.train_lm) is the entry point for programs; `python -m trainer.train_lm`
for people; `python -m trainer.generate` samples from a checkpoint. Importing this package is
light: the names below load their module (and torch) on first use. numba is never imported.
"""
from fastpack.lazy import lazy_attributes

__all__ = ["run_training", "find_latest_checkpoint", "load_checkpoint", "PackedDataset", "GPT", "parse_duration"]

_LAZY = {
    "run_training": "trainer.train_lm",
    "find_latest_checkpoint": "trainer.checkpoint",
    "load_checkpoint": "trainer.checkpoint",
    "PackedDataset": "trainer.data",
    "GPT": "trainer.model",
    "parse_duration": "trainer.budget",
}


__getattr__ = lazy_attributes(__name__, _LAZY)
