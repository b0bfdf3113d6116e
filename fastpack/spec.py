"""`PackSpec`: everything that shapes a packed split, built and checked once, whatever asked for it.

The CLI and the Kaggle runner build it from the config's `packing` section (`from_config`), the
Python API from keywords (`from_keywords`), audit from a meta's `params` (`from_dict`). Defaults
(seq_len 1024, stride = seq_len, dtype `auto`) are resolved here and nowhere else; an error names the setting
the way its caller spelled it (`packing.stride (--stride)` or `--stride`). With the sources'
fingerprints, `to_dict()` is the cache key stored in the meta.
"""
from __future__ import annotations

import dataclasses
from dataclasses import InitVar, dataclass
from typing import TYPE_CHECKING, Any, Literal, Optional

from fastpack.config import DEFAULT_SEQ_LEN
from fastpack.errors import UserError
from fastpack.modes import MODES, Mode
from fastpack.separators import Separators

if TYPE_CHECKING:
    from fastpack.config import PackingConfig

DEFAULT_FIELDS = ("input_ids", "ids", "tokens", "token_ids")
INT32_LIMIT = 2**31  # ids must be < this to fit int32
UINT16_LIMIT = 1 << 16


@dataclass(frozen=True)
class IdLimits:
    """What an id must be below, and why (the error says which limit it broke)."""

    vocab_size: int | None = None
    dtype_limit: int | None = None  # 65536 for uint16 output

    @property
    def limit(self) -> int:
        return min(x for x in (INT32_LIMIT, self.vocab_size, self.dtype_limit) if x is not None)

    def problem(self, value: int) -> str | None:
        if value < 0:
            return f"{value} is negative (token ids must be >= 0)"
        if value >= INT32_LIMIT:
            return f"{value} is beyond int32"
        if self.vocab_size is not None and value >= self.vocab_size:
            return f"{value} is >= vocab size {self.vocab_size}"
        if self.dtype_limit is not None and value >= self.dtype_limit:
            return f"{value} does not fit uint16 (ids must be < {self.dtype_limit}; use --dtype int32)"
        return None


@dataclass(frozen=True, kw_only=True)
class PackSpec:
    """The parameters of a pack: window shape, mode, special ids (None: no such token), input and output types."""

    seq_len: Optional[int] = None  # None: DEFAULT_SEQ_LEN (1024)
    stride: Optional[int] = None  # None: seq_len (disjoint windows)
    mode: str = "concat"
    eos_id: Optional[int] = None  # after every non-empty document
    bos_id: Optional[int] = None  # before every non-empty document
    pad_id: Optional[int] = None
    pad_last: bool = False
    fields: tuple[str, ...] = DEFAULT_FIELDS  # the ids field, in order of preference
    vocab_size: Optional[int] = None  # ids >= it are errors
    dtype: str = "int32"  # int32, uint16, or auto (uint16 when the vocabulary fits)
    on_bad_line: str = "error"
    num_shards: int = 1
    shard_index: int = 0
    spelled: InitVar[Literal["flags", "config"]] = "flags"  # how errors name a setting

    def __post_init__(self, spelled: str) -> None:
        if self.seq_len is None:
            object.__setattr__(self, "seq_len", DEFAULT_SEQ_LEN)
        if self.stride is None:
            object.__setattr__(self, "stride", self.seq_len)
        if self.dtype == "auto":
            fits = self.vocab_size is not None and self.vocab_size <= UINT16_LIMIT
            object.__setattr__(self, "dtype", "uint16" if fits else "int32")
        label = _label_for(spelled)
        self._check_window(label)
        self._check_choices(label)
        self._check_ids()

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def from_keywords(cls, *, add_eos: bool = True, field: Optional[str] = None,
                      spelled: Literal["flags", "config"] = "flags", **values: Any) -> "PackSpec":
        """From `pack_sequences`/`pack_arrays` keywords: `add_eos` (an eos id is then required), `field`."""
        if add_eos and values.get("eos_id") is None:
            raise UserError("no eos id: pass --eos-id N (packing.eos_id, eos_id=N), or --no-eos (packing.add_eos"
                            " false, add_eos=False) to pack without separators")
        if not add_eos:
            values["eos_id"] = None
        return cls(fields=(field,) if field else DEFAULT_FIELDS, spelled=spelled, **values)

    @classmethod
    def from_config(cls, packing: "PackingConfig", *, num_shards: int = 1, shard_index: int = 0) -> "PackSpec":
        """From the config's packing section (with the tokenizer's ids filled in); `format` is not the spec's."""
        values = {f.name: getattr(packing, f.name) for f in dataclasses.fields(packing) if f.name != "format"}
        return cls.from_keywords(**values, num_shards=num_shards, shard_index=shard_index, spelled="config")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PackSpec":
        """From a meta's `params`."""
        return cls(**dict(data, fields=tuple(data["fields"])))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["fields"] = list(self.fields)
        return data

    # -- what follows from it -------------------------------------------------------------------
    @property
    def mode_object(self) -> Mode:
        return MODES[self.mode]

    @property
    def pads(self) -> bool:
        return self.mode_object.pads(self)

    @property
    def separators(self) -> Separators:
        return Separators(bos=self.bos_id, eos=self.eos_id)

    @property
    def limits(self) -> IdLimits:
        return IdLimits(vocab_size=self.vocab_size, dtype_limit=UINT16_LIMIT if self.dtype == "uint16" else None)

    def windower(self, sink, boundaries=None):
        return self.mode_object.windower(self, sink, boundaries)

    # -- checks ---------------------------------------------------------------------------------
    def _check_window(self, label) -> None:
        n, s = self.seq_len, self.stride
        if n < 1:
            raise UserError(f"{label('seq_len')} must be >= 1, got {n}")
        if s < 1:
            raise UserError(f"{label('stride')} must be >= 1, got {s}")
        if s > n:
            raise UserError(f"{label('stride')} must be between 1 and seq_len ({n}), got {s}: --stride ({s}) must not"
                            f" exceed --seq-len ({n}), or windows would skip tokens")
        if self.mode not in MODES:
            raise UserError(f"{label('mode')} must be one of {', '.join(MODES)}, got {self.mode!r}")
        MODES[self.mode].check(self, label)

    def _check_choices(self, label) -> None:
        if self.dtype not in ("int32", "uint16"):
            raise UserError(f"{label('dtype')} must be int32, uint16 or auto, got {self.dtype!r}")
        if self.on_bad_line not in ("error", "skip"):
            raise UserError(f"{label('on_bad_line')} must be error or skip, got {self.on_bad_line!r}")
        if self.vocab_size is not None and self.vocab_size < 1:
            raise UserError(f"{label('vocab_size')} must be >= 1, got {self.vocab_size}")
        if self.num_shards < 1 or not 0 <= self.shard_index < self.num_shards:
            raise UserError(f"--shard-index must be in [0, {self.num_shards}), got {self.shard_index}")

    def _check_ids(self) -> None:
        if self.pads and self.pad_id is None:
            why = "--pad-last" if self.pad_last else f"--mode {self.mode}"
            raise UserError(f"{why} pads windows and needs a pad id: pass --pad-id N (packing.pad_id; the tokenizer"
                            " defines none): an id the model never needs to predict, e.g. the unk id")
        limits = self.limits
        for name in ("eos_id", "bos_id", "pad_id"):
            value = getattr(self, name)
            problem = None if value is None else limits.problem(value)
            if problem:
                raise UserError(f"--{name.replace('_', '-')} {problem}")


def _label_for(spelled: str):
    """`seq_len` -> `--seq-len` (flags, keywords) or `packing.seq_len (--seq-len)` (the config file)."""
    def label(key: str) -> str:
        flag = "--" + key.replace("_", "-")
        return f"packing.{key} ({flag})" if spelled == "config" else flag

    return label
