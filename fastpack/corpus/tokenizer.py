"""Stage 3, tokenizer: SentencePiece trained on the train split only -> `tokenizer/sp_model.{model,vocab}`
and `tokenizer/tokenizer_info.json` (vocab size, pad/unk/bos/eos ids, model type, training parameters).

SentencePiece reads *lines*: every non-empty line (paragraph) of every train document is one
sentence; with `input_sentence_size` > 0 it samples that many of them (large corpora). A newline
is a user-defined symbol (`tokenizer.user_defined_symbols`), and with the `identity` normalization
rule and no dummy prefix, a whole document encodes and decodes back to itself: the cleaner already
did NFC and whitespace, so SentencePiece must not change the text again.

The model is trained in memory and written atomically with its `.vocab`; `tokenizer_info.json`
(which records what the model was built from) is removed first and written last.
"""
from __future__ import annotations

import io
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator

from fastpack.atomic import write_bytes_atomic
from fastpack.config import Config, TokenizerConfig
from fastpack.corpus.build import Build, StageResult, fingerprint, read_build, rel, up_to_date
from fastpack.corpus.jsonl import iter_lines, parse_record, require_file, text_of
from fastpack.corpus.parallel import available_cpus
from fastpack.corpus.progress import byte_bar
from fastpack.errors import UserError
from fastpack.tokenizer_info import MODEL_FILE, TOKENIZER_INFO, VOCAB_FILE, TokenizerInfo, save_tokenizer_info

VERSION = 1
# Fields that do not change the trained model are left out of the cache key.
_NOT_PARAMS = ("num_threads", "encode_workers")  # (threads move scores in the 6th digit; recorded, not keyed)
TRAIN_BYTES_PER_THREAD = 16 << 20

_TOO_HIGH = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")
_TOO_LOW = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")


def trainer_params(cfg: TokenizerConfig) -> dict[str, Any]:
    """The config fields that shape the model (the stage's cache key)."""
    return {k: v for k, v in asdict(cfg).items() if k not in _NOT_PARAMS}


def _sentences(path: Path, state: dict[str, Any], bar) -> Iterator[str]:
    """Every non-empty line of every document. SentencePiece turns an exception raised in here into
    an opaque RuntimeError, so a UserError is parked in `state` and the iteration just stops."""
    try:
        for lineno, line in iter_lines(path):
            text = text_of(path, lineno, parse_record(path, lineno, line))
            for sentence in text.split("\n"):
                if sentence:
                    state["sentences"] += 1
                    yield sentence
            bar.update(len(line) + 1)
    except UserError as exc:
        state["error"] = exc


def training_threads(cfg: TokenizerConfig, train_bytes: int) -> int:
    """`num_threads`, or with 0 one thread per TRAIN_BYTES_PER_THREAD of text, up to all cores: on small
    corpora SentencePiece's threads cost more than they save (3x slower on the 3 MB sample with 2)."""
    return cfg.num_threads or max(1, min(available_cpus(), train_bytes // TRAIN_BYTES_PER_THREAD))


def vocab_text(sp) -> str:
    """`sp_model.vocab` exactly as SentencePiece's model_prefix writes it: piece TAB score (C++ %g)."""
    return "".join(f"{sp.id_to_piece(i)}\t{sp.get_score(i):g}\n" for i in range(sp.get_piece_size()))


def _user_error(exc: RuntimeError, cfg: TokenizerConfig, train: Path) -> UserError:
    message = str(exc)
    if m := _TOO_HIGH.search(message):
        return UserError(f"tokenizer.vocab_size {m.group(1)} is too large for {train}: SentencePiece can make at "
                         f"most {m.group(2)} pieces from it; pass --vocab-size {m.group(2)} or less, or use more text")
    if m := _TOO_LOW.search(message):
        return UserError(f"tokenizer.vocab_size {m.group(1)} is too small for {train}: its characters, the special "
                         f"tokens{' and the 256 byte pieces' if cfg.byte_fallback else ''} need {m.group(2)}; "
                         f"pass --vocab-size {m.group(2)} or more (or lower tokenizer.character_coverage)")
    detail = message.split("] ", 1)[-1] if "] " in message else message
    return UserError(f"tokenizer: SentencePiece failed on {train}: {detail}")


def train_tokenizer(config: Config, root: str | Path, *, force: bool = False, show_progress: bool = False) -> StageResult:
    """Train SentencePiece on the train split (skipped when up to date)."""
    import sentencepiece as spm

    root = Path(root).resolve()
    cfg, paths = config.tokenizer, config.paths
    train = require_file(paths.resolve(root, "splits_dir") / "train.jsonl", "train split",
                         "run `python -m fastpack.corpus split` first")
    out_dir = paths.resolve(root, "tokenizer_dir")
    model_path, vocab_path, info_path = out_dir / MODEL_FILE, out_dir / VOCAB_FILE, out_dir / TOKENIZER_INFO
    outputs = [model_path, vocab_path]
    build = Build(stage="tokenizer", version=VERSION, inputs=[fingerprint(train, root)], params=trainer_params(cfg))
    if not force and info_path.is_file() and up_to_date(read_build(info_path, "training", "build"), build, outputs, root):
        return StageResult("tokenizer", True, f"tokenizer: up to date ({rel(model_path, root)} from the same "
                           f"train split and tokenizer settings)", (*outputs, info_path))

    state: dict[str, Any] = {"sentences": 0, "error": None}
    threads = training_threads(cfg, train.stat().st_size)
    model = io.BytesIO()
    spm.set_random_generator_seed(cfg.seed)
    with byte_bar(train.stat().st_size, "tokenizer: read train", show_progress) as bar:
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=_sentences(train, state, bar),
                model_writer=model,  # not model_prefix: the model would record that (temp) path
                vocab_size=cfg.vocab_size,
                model_type=cfg.model_type,
                character_coverage=cfg.character_coverage,
                byte_fallback=cfg.byte_fallback,
                pad_id=cfg.pad_id, unk_id=cfg.unk_id, bos_id=cfg.bos_id, eos_id=cfg.eos_id,
                normalization_rule_name=cfg.normalization_rule_name,
                add_dummy_prefix=cfg.add_dummy_prefix,
                user_defined_symbols=list(cfg.user_defined_symbols),
                input_sentence_size=cfg.input_sentence_size,
                shuffle_input_sentence=True,
                max_sentence_length=cfg.max_sentence_length,
                num_threads=threads,
                minloglevel=2,  # its own log is hundreds of lines; the progress bar says how far it got
            )
        except RuntimeError as exc:
            if state["error"] is not None:
                raise state["error"] from None
            if state["sentences"] == 0:
                raise UserError(f"{train}: the train split has no text to train a tokenizer on") from None
            raise _user_error(exc, cfg, train) from None
    if state["error"] is not None:
        raise state["error"]
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())

    info_path.unlink(missing_ok=True)  # the marker goes first: an interrupted rebuild is redone next time
    write_bytes_atomic(model_path, model.getvalue())
    write_bytes_atomic(vocab_path, vocab_text(sp).encode("utf-8"))
    written = [fingerprint(model_path, root), fingerprint(vocab_path, root)]
    info = TokenizerInfo(
        vocab_size=sp.get_piece_size(), pad_id=sp.pad_id(), unk_id=sp.unk_id(), bos_id=sp.bos_id(),
        eos_id=sp.eos_id(), model_type=cfg.model_type, model_file=MODEL_FILE,
        training={**trainer_params(cfg), "sentences": state["sentences"], "train": rel(train, root), "threads": threads,
                  "build": build.with_outputs(written).to_dict()},
    )
    save_tokenizer_info(info, info_path)
    message = (f"tokenizer: SentencePiece {cfg.model_type}, vocab {info.vocab_size}, pad/unk/bos/eos "
               f"{info.pad_id}/{info.unk_id}/{info.bos_id}/{info.eos_id}, from {state['sentences']:,} lines of "
               f"{rel(train, root)} -> {rel(model_path, root)}")
    return StageResult("tokenizer", False, message, (*outputs, info_path), info.to_dict())
