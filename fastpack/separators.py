"""Separators: the bos/eos ids around every non-empty document, written in one place.

The readers lay documents out as the packing stream with a free slot before (bos) and after
(eos) each non-empty document, as the separators ask (the JSONL scanner leaves the slots while
it parses; `spread` does it for arrays); `fill` then writes the ids into those slots. Empty
documents get no separators. `None` means "no such token" throughout.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Separators:
    bos: Optional[int] = None  # before every non-empty document
    eos: Optional[int] = None  # after every non-empty document

    @property
    def head(self) -> int:
        """Slots before a document (0 or 1)."""
        return int(self.bos is not None)

    @property
    def tail(self) -> int:
        """Slots after a document (0 or 1)."""
        return int(self.eos is not None)

    @property
    def per_doc(self) -> int:
        return self.head + self.tail

    def fill(self, stream: np.ndarray, offsets: np.ndarray) -> None:
        """Write the ids into the slots of the documents stream[offsets[i]:offsets[i+1]]."""
        if self.per_doc:
            from fastpack.kernels import fill_separators

            fill_separators(stream, offsets, -1 if self.bos is None else self.bos,
                            -1 if self.eos is None else self.eos)

    def spread(self, values: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Documents `values`/`offsets` -> int32 stream with free slots around each, and its document offsets."""
        from fastpack.kernels import spread_documents, stream_positions

        if not self.per_doc:
            return values.astype(np.int32, copy=False), offsets
        positions = stream_positions(offsets, self.per_doc, 0)
        stream = np.empty(int(positions[-1]), np.int32)
        spread_documents(values, offsets, positions, self.head, stream)
        return stream, positions

    def apply(self, values: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Documents -> the stream [bos] doc [eos] ... and its document offsets (for in-memory inputs)."""
        stream, positions = self.spread(values, offsets)
        self.fill(stream, positions)
        return stream, positions

