"""The one config every stage reads: `config/training_config.json`, loaded into frozen dataclasses.

Paths in the `paths` section are relative to the *root*: the folder that holds `config/`
(locally the project's data root, on Kaggle the bundle root). Every CLI flag overrides one
field; `--set section.key=value` overrides any field. Unknown keys and wrong types raise a
`UserError` naming the dotted key, so a typo never silently falls back to a default.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Optional, Sequence

from fastpack.atomic import write_json_atomic
from fastpack.errors import UserError
from fastpack.jsonfile import read_json

CONFIG_RELPATH = Path("config") / "training_config.json"
SPLITS = ("train", "val", "test")
DEFAULT_SEQ_LEN = 1024  # packing.seq_len when the config leaves it null

_FROZEN = dict(frozen=True, kw_only=True, slots=True)


@dataclass(**_FROZEN)
class PathsConfig:
    raw_dir: str = "dataset/raw"  # raw corpus: a folder of .txt novels (or a JSONL with a text field)
    preprocessed: str = "dataset/preprocessed/all_novels_preprocessed_clean.jsonl"
    splits_dir: str = "dataset/splits"  # {train,val,test}.jsonl
    tokenizer_dir: str = "tokenizer"  # sp_model.model, sp_model.vocab, tokenizer_info.json
    tokenized_dir: str = "dataset/tokenized"  # {split}_tokens.jsonl, the packer's input
    packed_dir: str = "dataset/packed"  # {split}.npy|.pt + {split}.meta.json
    reports_dir: str = "reports"  # QA summaries of every stage
    output_dir: str = "model_output"  # checkpoints, metrics, samples

    def resolve(self, root: str | Path, key: str) -> Path:
        """The absolute path of `key`, relative paths taken from the root (the folder holding config/)."""
        return (Path(root) / getattr(self, key)).resolve()


@dataclass(**_FROZEN)
class CleanConfig:
    """Raw text -> clean documents (fastpack/corpus/clean.py). Patterns are matched case-insensitively."""

    unicode_form: Literal["NFC", "NFKC"] = "NFC"  # Vietnamese mixes composed/decomposed diacritics
    split_chapters: bool = True  # one document per chapter heading; all chapters of a novel share a split
    chapter_pattern: str = r"^\s*(chương|chuong|chapter|hồi|quyển|phần)\s+[0-9ivxlcdm]+\b.*$"
    min_doc_chars: int = 200  # shorter documents are dropped (and counted)
    dedupe: bool = True  # drop exact duplicate documents
    strip_html: bool = True  # leftover tags and entities
    drop_boilerplate: bool = True  # URL-only lines and site boilerplate
    boilerplate_pattern: str = (  # a whole line matching it is dropped ("" : none); URL lines are always dropped
        r"^\s*(?:(?:nguồn|source|converter|convert|người dịch|dịch giả|biên tập|editor|beta|đăng tại"
        r"|đọc truyện tại)\s*[:：].{0,120}|(?:chúc )?(?:các )?bạn đọc truyện vui vẻ.{0,40}"
        r"|(?:mời )?(?:các )?bạn (?:đọc|xem) (?:tiếp |truyện )?(?:mới nhất )?tại\b.{0,80})$"
    )
    on_bad_utf8: Literal["error", "skip", "replace"] = "error"  # a file that is not UTF-8
    text_field: str = "text"  # when the raw input is a JSONL

    def __post_init__(self) -> None:
        import re

        for name in ("chapter_pattern", "boilerplate_pattern"):
            try:
                re.compile(getattr(self, name))
            except re.error as exc:
                raise UserError(f"clean.{name} is not a valid regular expression: {exc}") from None
        if self.min_doc_chars < 0:
            raise UserError(f"clean.min_doc_chars must be >= 0, got {self.min_doc_chars}")


@dataclass(**_FROZEN)
class TokenizerConfig:
    """SentencePiece, trained on the train split's lines (fastpack/corpus/tokenizer.py)."""

    vocab_size: int = 32000  # real corpora; the generated sample needs ~3000 (--vocab-size)
    model_type: Literal["unigram", "bpe", "char", "word"] = "unigram"
    character_coverage: float = 0.9999
    byte_fallback: bool = True  # unseen characters become bytes, never <unk>
    pad_id: int = 0  # a real pad id, so packing can pad
    unk_id: int = 1
    bos_id: int = 2  # -1: no such token
    eos_id: int = 3  # -1: no such token
    normalization_rule_name: str = "identity"  # the cleaner already did NFC; identity keeps decode(encode(x)) == x
    add_dummy_prefix: bool = False  # False: a word at a line start encodes the same as at the document start
    user_defined_symbols: list[str] = field(default_factory=lambda: ["\n"])  # "\n": paragraphs survive encoding
    input_sentence_size: int = 2_000_000  # sample this many sentences (lines) from large corpora; 0: all
    max_sentence_length: int = 16384  # bytes; longer lines are skipped by SentencePiece
    num_threads: int = 0  # training threads; 0: one per 16 MB of train text, up to all cores
    encode_workers: int = 0  # processes for the tokenize stage; 0: all cores
    seed: int = 0

    def __post_init__(self) -> None:
        if self.vocab_size < 1:
            raise UserError(f"tokenizer.vocab_size must be >= 1, got {self.vocab_size}")
        if self.unk_id < 0:
            raise UserError(f"tokenizer.unk_id must be a real id (>= 0), got {self.unk_id}")
        ids = {name: getattr(self, f"{name}_id") for name in ("pad", "unk", "bos", "eos")}
        used = [v for v in ids.values() if v >= 0]
        if len(used) != len(set(used)):
            raise UserError(f"tokenizer: pad/unk/bos/eos ids must be distinct (or -1), got {ids}")
        for name, value in ids.items():
            if value >= self.vocab_size:
                raise UserError(f"tokenizer.{name}_id must be < vocab_size ({self.vocab_size}), got {value}")
        if not 0.0 < self.character_coverage <= 1.0:
            raise UserError(f"tokenizer.character_coverage must be in (0, 1], got {self.character_coverage}")
        for name in ("input_sentence_size", "num_threads", "encode_workers"):
            if getattr(self, name) < 0:
                raise UserError(f"tokenizer.{name} must be >= 0, got {getattr(self, name)}")


@dataclass(**_FROZEN)
class SplitConfig:
    """Documents -> train/val/test by group (fastpack/corpus/split.py): groups ranked by a salted hash, cut by size."""

    train: float = 0.90  # share of characters; every split with a share > 0 gets at least one group
    val: float = 0.05
    test: float = 0.05
    salt: str = "fastpack-split-v1"  # changing it reshuffles every group
    group_key: str = "source"  # documents sharing it (chapters of one novel) stay in one split

    def __post_init__(self) -> None:
        ratios = (self.train, self.val, self.test)
        if min(ratios) < 0 or abs(sum(ratios) - 1.0) > 1e-6:
            raise UserError(f"split: train/val/test must be >= 0 and sum to 1, got {ratios}")
        if self.train <= 0:
            raise UserError(f"split.train must be > 0 (the tokenizer trains on it), got {self.train}")
        if not self.group_key:
            raise UserError("split.group_key must name a field of the preprocessed records, got ''")


@dataclass(**_FROZEN)
class PackingConfig:
    """How token files become windows: checked (with the tokenizer's ids filled in) as one `fastpack.spec.PackSpec`
    when packing, whose values the packed meta records."""

    seq_len: Optional[int] = None  # None: 1024 when packing; the trainer takes the packed windows' length
    stride: Optional[int] = None  # None: = seq_len (disjoint windows); < seq_len: overlapping
    mode: str = "concat"  # concat, document or bestfit (fastpack/modes.py)
    add_eos: bool = True  # eos after every document
    eos_id: Optional[int] = None  # None: from tokenizer_info.json
    bos_id: Optional[int] = None  # set: bos before every document
    pad_id: Optional[int] = None  # None: from tokenizer_info.json
    pad_last: bool = False  # pad the last partial window instead of dropping it
    vocab_size: Optional[int] = None  # None: from tokenizer_info.json; ids >= it are errors
    field: Optional[str] = None  # None: input_ids, ids, tokens or token_ids
    format: Literal["npy", "pt", "both"] = "npy"
    dtype: Literal["int32", "uint16", "auto"] = "int32"
    on_bad_line: Literal["error", "skip"] = "error"


@dataclass(**_FROZEN)
class Config:
    """The sections fastpack reads, plus the other packages' sections kept verbatim in `others`.

    The file also holds the trainer's `model` and `training` sections; fastpack does not know
    them (dependencies flow one way), so a stage that loads and saves the config carries them
    through untouched. The trainer's `trainer.config.RunConfig` extends this class with those
    sections typed, and reports any section it does not know (`OPEN = False`).
    """

    OPEN: ClassVar[bool] = True  # sections without a field are kept in `others`, not rejected

    paths: PathsConfig = field(default_factory=PathsConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    packing: PackingConfig = field(default_factory=PackingConfig)
    others: dict[str, dict[str, Any]] = field(default_factory=dict)  # section -> its keys, as in the file

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: dataclasses.asdict(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "others"}
        return copy.deepcopy(self.others) | data

    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> Any:
        if not isinstance(data, dict):
            raise UserError(f"{source}: top level must be an object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)} - {"others"}
        others = {k: v for k, v in data.items() if k not in names}
        for section, value in others.items():
            if not cls.OPEN:
                raise UserError(f"{source}: unknown key {section} (known: {', '.join(sorted(names))})")
            if not isinstance(value, dict):
                raise UserError(f"{source}: {section} must be an object, got {type(value).__name__}")
        built = _build(cls, {k: v for k, v in data.items() if k in names}, source, "")
        return dataclasses.replace(built, others=copy.deepcopy(others)) if others else built

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: Sequence[str] = ()) -> Any:
        """Read a config file (defaults when `path` is None) and apply `section.key=value` overrides."""
        config = cls() if path is None else cls.from_dict(read_json(path, "config file not found"), source=str(path))
        return config.override(overrides)

    def replace(self, section: str, **values: Any) -> Any:
        """A copy with some fields of one section changed (`None` values are ignored), type-checked."""
        values = {k: v for k, v in values.items() if v is not None}
        if not values:
            return self
        data = self.to_dict()
        if section not in data:
            raise UserError(f"unknown config section {section!r} (known: {', '.join(sorted(data))})")
        data[section].update(values)
        return type(self).from_dict(data, source="arguments")

    def override(self, assignments: Sequence[str]) -> Any:
        """Apply `section.key=value` strings; values are JSON (`1024`, `true`, `null`, `[...]`) or bare strings.

        In a section kept in `others` any key may be set: the package owning it checks it.
        """
        data = self.to_dict()
        for assignment in assignments:
            key, sep, raw = assignment.partition("=")
            parts = key.strip().split(".")
            if not sep or len(parts) != 2 or not all(parts):
                raise UserError(f"--set expects section.key=value, got {assignment!r}")
            section, name = parts
            if section not in data:
                raise UserError(f"--set {key}: unknown section {section!r} (known: {', '.join(data)})")
            if name not in data[section] and section not in self.others:
                raise UserError(f"--set {key}: unknown key (known in {section}: {', '.join(data[section])})")
            data[section][name] = _parse_value(raw)
        return type(self).from_dict(data, source="--set")


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Read a config file (defaults when `path` is None) and apply `section.key=value` overrides."""
    return Config.load(path, overrides)


def save_config(config: Config, path: str | Path) -> None:
    write_json_atomic(path, config.to_dict())


def config_root(config_path: str | Path) -> Path:
    """The data root: the folder that holds `config/training_config.json`."""
    return Path(config_path).resolve().parent.parent


def find_config(root: str | Path = ".") -> Path | None:
    """`ROOT/config/training_config.json` when it exists."""
    candidate = Path(root) / CONFIG_RELPATH
    return candidate if candidate.is_file() else None


def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise UserError(f"{source}: {prefix.rstrip('.') or 'top level'} must be an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(f"{source}: unknown key {prefix}{unknown[0]} (known: {', '.join(sorted(names))})")
    values = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, source, f"{prefix}{name}.")
        else:
            values[name] = _check(value, hint, source, f"{prefix}{name}")
    return cls(**values)


def _check(value: Any, hint: Any, source: str, key: str) -> Any:
    """Return `value` (ints widened to float where a float is expected) or raise naming the key."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for option in inner[:-1]:
            try:
                return _check(value, option, source, key)
            except UserError:
                pass
        return _check(value, inner[-1], source, key)
    if origin is Literal:
        if value not in args:
            raise UserError(f"{source}: {key} must be one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise UserError(f"{source}: {key} must be a list, got {type(value).__name__}")
        return [_check(v, args[0], source, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise UserError(f"{source}: {key} must be {hint.__name__}, got {type(value).__name__} {value!r}")
    return value
