"""`torch.compile` for the training model: on by default on CUDA, off on CPU, and never fatal.

`training.compile` null means "where it helps": CUDA with Triton present. A compile that fails
(inductor needs a C compiler and Triton; an old GPU may lack what Triton wants) shows at the first
step: the loop then logs one note and trains the eager model.
"""
from __future__ import annotations

from typing import Optional

import torch


def compile_decision(requested: Optional[bool], device_type: str) -> tuple[bool, str]:
    """(compile?, a note for the log, "" when there is nothing to say)."""
    if requested is False:
        return False, ""
    if device_type != "cuda":
        if requested:
            return True, ""  # asked for explicitly on CPU: inductor's C++ backend, slow to build
        return False, ""
    if not _has_triton():
        note = "note: torch.compile skipped: Triton is not installed (pip install triton); training eagerly"
        return False, note
    return True, ""


def _has_triton() -> bool:
    try:
        from torch.utils._triton import has_triton
    except ImportError:
        return False
    return bool(has_triton())


def is_compile_error(exc: BaseException) -> bool:
    """Whether an exception from a compiled model's first step is the compiler's (not the model's or memory's)."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return False
    try:
        from torch._dynamo.exc import TorchDynamoException
    except ImportError:
        return False
    return isinstance(exc, TorchDynamoException)
