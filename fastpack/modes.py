"""Packing modes, one object each: how it windows, whether it pads, how many reads it takes,
what its audit checks, and what a reader of its windows may assume about overlap.

Adding a mode: subclass `Mode`, register it in `MODES`, give it a windower (windows.py or its
own module, the `feed`/`next_pass`/`finish` interface) and an audit check (audit.py). Import-light:
the trainer reads `overlap` without loading numba.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

if TYPE_CHECKING:
    from fastpack.spec import PackSpec


class Mode:
    name: ClassVar[str]
    pads_every_document: ClassVar[bool] = False  # a document's last window is padded, whatever pad_last says
    passes: ClassVar[int] = 1  # reads of the input
    strides: ClassVar[bool] = True  # False: stride must be seq_len (whole documents, no overlap)
    overlap: ClassVar[Literal["stream", "none", "document"]]  # stride < seq_len: what a window repeats of the last

    def check(self, spec: "PackSpec", label) -> None:
        """Raise a UserError for a spec this mode cannot pack (`label(key)` names a setting as the caller spelled it)."""
        from fastpack.errors import UserError

        if not self.strides and spec.stride != spec.seq_len:
            raise UserError(f"--mode {self.name} places whole documents: {label('stride')} must equal "
                            f"{label('seq_len')} ({spec.seq_len})")

    def pads(self, spec: "PackSpec") -> bool:
        return spec.pad_last or self.pads_every_document

    def windower(self, spec: "PackSpec", sink, boundaries=None):
        raise NotImplementedError

    def audit_check(self) -> type:
        raise NotImplementedError


class Concat(Mode):
    """One stream (doc [eos] doc [eos] ...) cut at k*stride; the tail dropped, or padded with --pad-last."""

    name = "concat"
    overlap = "stream"  # every window after the first repeats the previous one's last seq_len - stride tokens

    def windower(self, spec, sink, boundaries=None):
        from fastpack.windows import ConcatWindower

        return ConcatWindower(pad_last=spec.pad_last, **_window_args(spec, sink, boundaries))

    def audit_check(self) -> type:
        from fastpack.audit import ConcatCheck

        return ConcatCheck


class Document(Mode):
    """Each document windowed on its own, its last partial window padded: no window mixes documents."""

    name = "document"
    pads_every_document = True
    overlap = "document"  # only windows of the same document overlap

    def windower(self, spec, sink, boundaries=None):
        from fastpack.windows import DocumentWindower

        return DocumentWindower(**_window_args(spec, sink, boundaries))

    def audit_check(self) -> type:
        from fastpack.audit import DocumentCheck

        return DocumentCheck


class BestFit(Mode):
    """Whole documents (seq_len pieces of longer ones) placed by best-fit-decreasing; two reads."""

    name = "bestfit"
    pads_every_document = True
    passes = 2  # lengths first, then every piece to its slot
    strides = False
    overlap = "none"

    def windower(self, spec, sink, boundaries=None):
        from fastpack.bestfit import BestFitWindower

        return BestFitWindower(**_window_args(spec, sink, boundaries))

    def audit_check(self) -> type:
        from fastpack.audit import BestFitCheck

        return BestFitCheck


def _window_args(spec: "PackSpec", sink, boundaries) -> dict:
    return dict(seq_len=spec.seq_len, stride=spec.stride, separators=spec.separators, pad_id=spec.pad_id,
                dtype=spec.dtype, sink=sink, boundaries=boundaries)


MODES: dict[str, Mode] = {mode.name: mode for mode in (Concat(), Document(), BestFit())}
