"""The one config every stage reads: `config/training_config.json`, loaded into frozen dataclasses.

Paths in the `paths` section are relative to the *root*: the folder that holds `config/`
(locally the project's data root, on Kaggle the bundle root). Every CLI flag overrides one
field; `--set section.key=value` overrides any field. Unknown keys and wrong types raise a
`UserError` naming the dotted key, so a typo never silently falls back to a default.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Sequence, Union

from fastpack.atomic import write_json_atomic
from fastpack.errors import UserError
from fastpack.jsonfile import read_json

CONFIG_RELPATH = Path("config") / "training_config.json"
SPLITS = ("train", "val", "test")

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
    seq_len: int = 1024
    stride: Optional[int] = None  # None: = seq_len (disjoint windows); < seq_len: overlapping
    mode: Literal["concat", "document", "bestfit"] = "concat"
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

    def __post_init__(self) -> None:
        if self.seq_len < 1:
            raise UserError(f"packing.seq_len (--seq-len) must be >= 1, got {self.seq_len}")
        if self.stride is not None and not 1 <= self.stride <= self.seq_len:
            raise UserError(f"packing.stride (--stride) must be between 1 and seq_len ({self.seq_len}), got {self.stride}")

    @property
    def window_stride(self) -> int:
        return self.seq_len if self.stride is None else self.stride


@dataclass(**_FROZEN)
class ModelConfig:
    """The GPT's shape (trainer/model.py). A preset gives every size; a field set here overrides it."""

    preset: Literal["tiny", "small", "base"] = "small"  # tiny (tests), small (30M at vocab 32k), base (124M)
    n_layer: Optional[int] = None  # None: from the preset
    n_head: Optional[int] = None
    d_model: Optional[int] = None  # must be a multiple of n_head; head size even (rotary)
    d_ff: Optional[int] = None  # None: SwiGLU's ~8/3 * d_model, rounded up to a multiple of 64
    context_len: Optional[int] = None  # None: packing.seq_len; the packed windows must have this length
    dropout: float = 0.0
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    vocab_size: Optional[int] = None  # None: from tokenizer_info.json

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_head", "d_model", "d_ff", "context_len", "vocab_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"model.{name} must be >= 1 (or null), got {value}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"model.dropout must be in [0, 1), got {self.dropout}")


@dataclass(**_FROZEN)
class TrainingConfig:
    """The training loop (trainer/train_lm.py). One step = grad_accum micro-batches on every process."""

    batch_size: int = 16  # windows per micro-batch per process
    grad_accum: int = 4  # micro-batches per optimizer step
    lr: float = 3e-4  # peak, reached after warmup_steps
    min_lr: float = 3e-5  # the cosine ends here at max_steps
    warmup_steps: int = 200
    max_steps: int = 5000  # optimizer steps; the schedule's length
    weight_decay: float = 0.1  # on matrices only: never on norms, biases or embeddings
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # max global grad norm; 0: no clipping
    eval_interval: int = 250  # steps between validation runs (and samples)
    eval_batches: Optional[int] = 50  # validation batches per process; None: the whole val split
    test_batches: Optional[int] = None  # test batches per process at the end; None: the whole test split
    log_interval: int = 10
    checkpoint_interval: int = 500  # steps between periodic checkpoints
    checkpoint_minutes: float = 10.0  # also a checkpoint this often: a kill (Kaggle, 12 h, no catchable signal) loses < 15 min
    keep_checkpoints: int = 3  # periodic ones kept besides last and best
    max_checkpoint_gb: float = 15.0  # Kaggle keeps at most 20 GB of output
    max_nonfinite_steps: int = 5  # a non-finite gradient norm skips the update; this many in a row stop the run
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"  # auto: bf16 on cc >= 8.0, fp16 below, fp32 on CPU
    compile: bool = False  # torch.compile the model
    seed: int = 1337  # init, shuffling (with the epoch) and dropout
    num_workers: int = 2  # DataLoader worker processes per training process
    time_budget: Union[float, str, None] = None  # e.g. "11h30m", "90m" or "3600" (seconds): stop cleanly before it
    sample_prompts: list[str] = field(default_factory=lambda: ["Chương 1", "Ngày hôm ấy"])
    sample_tokens: int = 100  # new tokens per prompt in samples.txt
    temperature: float = 0.8
    top_k: int = 50  # 0: sample from the whole vocabulary
    document_attention: bool = False  # attend only within a document (needs the boundaries sidecar)
    loss_on_overlap: bool = True  # False: mask the prefix a stride < seq_len window shares
    eval_loss_on_overlap: Optional[bool] = None  # None: False (sliding-window perplexity) when val/test stride < seq_len

    def __post_init__(self) -> None:
        for name in ("batch_size", "grad_accum", "max_steps", "eval_interval", "log_interval",
                     "checkpoint_interval", "keep_checkpoints", "sample_tokens", "max_nonfinite_steps"):
            if getattr(self, name) < 1:
                raise UserError(f"training.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_batches", "test_batches"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"training.{name} must be >= 1 or null (the whole split), got {value}")
        for name in ("warmup_steps", "num_workers", "top_k"):
            if getattr(self, name) < 0:
                raise UserError(f"training.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.lr or not 0 <= self.min_lr <= self.lr:
            raise UserError(f"training: need lr > 0 and 0 <= min_lr <= lr, got lr={self.lr} min_lr={self.min_lr}")
        if self.grad_clip < 0 or self.weight_decay < 0 or self.temperature < 0:
            raise UserError("training: grad_clip, weight_decay and temperature must be >= 0")
        if self.checkpoint_minutes <= 0 or self.max_checkpoint_gb <= 0:
            raise UserError("training: checkpoint_minutes and max_checkpoint_gb must be > 0")


@dataclass(**_FROZEN)
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    packing: PackingConfig = field(default_factory=PackingConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> "Config":
        return _build(cls, data, source, "")

    def replace(self, section: str, **values: Any) -> "Config":
        """A copy with some fields of one section changed (`None` values are ignored), type-checked."""
        values = {k: v for k, v in values.items() if v is not None}
        if not values:
            return self
        data = self.to_dict()
        data[section].update(values)
        return Config.from_dict(data, source="arguments")

    def override(self, assignments: Sequence[str]) -> "Config":
        """Apply `section.key=value` strings; values are JSON (`1024`, `true`, `null`, `[...]`) or bare strings."""
        data = self.to_dict()
        for assignment in assignments:
            key, sep, raw = assignment.partition("=")
            parts = key.strip().split(".")
            if not sep or len(parts) != 2 or not all(parts):
                raise UserError(f"--set expects section.key=value, got {assignment!r}")
            section, name = parts
            if section not in data:
                raise UserError(f"--set {key}: unknown section {section!r} (known: {', '.join(data)})")
            if name not in data[section]:
                raise UserError(f"--set {key}: unknown key (known in {section}: {', '.join(data[section])})")
            data[section][name] = _parse_value(raw)
        return Config.from_dict(data, source="--set")


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Read a config file (defaults when `path` is None) and apply `section.key=value` overrides."""
    config = Config()
    if path is not None:
        config = Config.from_dict(read_json(path, "config file not found"), source=str(path))
    return config.override(overrides)


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
