"""Named arrays reused from block to block, so steady-state packing allocates (and touches) no new memory."""
from __future__ import annotations

import numpy as np


class Buffers:
    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, size: int, dtype, keep: int = 0) -> np.ndarray:
        """`size` elements of buffer `name`, reallocated (with a quarter to spare) only when too small.

        A reallocated buffer keeps its first `keep` elements.
        """
        buf = self._arrays.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            grown = np.empty(max(size, 1) if buf is None else max(size, buf.size + buf.size // 4), dtype)
            if keep:
                grown[:keep] = buf[:keep]
            buf = self._arrays[name] = grown
        return buf[:size]
