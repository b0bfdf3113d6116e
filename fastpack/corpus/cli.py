"""`python -m fastpack.corpus`: prepare a corpus for the packer, one subcommand per stage.

Every path and parameter comes from ROOT/config/training_config.json (defaults when it does not
exist yet); flags override single fields and are saved back into that file after a successful
run, so the config always describes the outputs beside it.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional, Sequence

from fastpack.atomic import Reclaimed, reclaim_temps
from fastpack.config import CONFIG_RELPATH, Config, config_root, load_config, save_config
from fastpack.errors import UserError

DESCRIPTION = """\
Prepare a text corpus for training: clean -> split -> tokenizer -> tokenize.

Every output goes under ROOT (the folder that holds config/training_config.json) at the
paths of the config's `paths` section. Without a config, the defaults are used; after a
successful run the config (with any flags and --set values) is saved there. Each stage
records what it was built from and does nothing when its inputs and settings are
unchanged (--force rebuilds). Errors: one line on stderr, exit code 2.

  python -m fastpack.corpus sample --out data/dataset/raw     # generated Vietnamese sample, ~3.4 MB
  python -m fastpack.corpus all --raw data/dataset/raw --root data --vocab-size 3000
"""

_STAGES = {
    "all": "run clean, split, tokenizer and tokenize in order (each skipped when up to date)",
    "clean": "raw .txt/.jsonl -> dataset/preprocessed/all_novels_preprocessed_clean.jsonl + "
             "reports/preprocessing_summary.json, reports/clean_noise_report.json",
    "split": "preprocessed JSONL -> dataset/splits/{train,val,test}.jsonl + reports/split_summary.json "
             "(by a stable hash of the novel, cut by size)",
    "tokenizer": "train SentencePiece on the train split -> tokenizer/sp_model.model, sp_model.vocab, "
                 "tokenizer_info.json",
    "tokenize": "encode each split on all cores -> dataset/tokenized/{split}_tokens.jsonl + "
                "reports/tokenization_summary.json",
}


def _common(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--root", type=Path, help="data root holding config/ (default: the current folder)")
    where.add_argument("--config", type=Path, help="a training_config.json; the root is the folder above its config/")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override any config field, e.g. --set clean.min_doc_chars=100 (repeatable)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the outputs are up to date")
    parser.add_argument("--show-progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bars on stderr (default: when stderr is a terminal)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fastpack.corpus", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in _STAGES.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p)
        if name in ("all", "clean"):
            p.add_argument("--raw", type=Path, help="raw corpus: a folder of .txt novels or a .jsonl (paths.raw_dir)")
            p.add_argument("--on-bad-utf8", choices=("error", "skip", "replace"),
                           help="a raw file that is not UTF-8: stop, skip it, or decode with U+FFFD (clean.on_bad_utf8)")
        if name in ("all", "tokenizer"):
            p.add_argument("--vocab-size", type=int, help="SentencePiece vocabulary (tokenizer.vocab_size; "
                                                          "the generated sample needs ~3000)")
            p.add_argument("--model-type", choices=("unigram", "bpe", "char", "word"), help="tokenizer.model_type")
        if name in ("all", "clean", "tokenize"):
            p.add_argument("--workers", type=int, help="processes for cleaning and encoding (default: all cores; "
                                                       "tokenize: tokenizer.encode_workers when set)")
    p = sub.add_parser("sample", help="write the generated sample corpus (Vietnamese novels with noise) as raw input",
                       description="Write a deterministic sample corpus: a few MB of Vietnamese-looking novels with "
                                   "chapters and deliberate noise for the cleaner. No download.")
    p.add_argument("--out", type=Path, required=True, help="folder for the .txt novels (created)")
    p.add_argument("--size-mb", type=float, default=3.0, help="about this many MB of text (default 3)")
    p.add_argument("--seed", type=int, default=0, help="another seed, another corpus (default 0)")
    p.add_argument("--bad-utf8", action="store_true", help="also write one file that is not UTF-8")
    return parser


def _raw_setting(raw: Path, root: Path) -> str:
    raw = raw.resolve()
    try:
        return raw.relative_to(root).as_posix()
    except ValueError:
        return str(raw)


def _flag_values(args: argparse.Namespace, root: Path) -> dict[str, dict[str, Any]]:
    raw = getattr(args, "raw", None)
    return {
        "paths": {"raw_dir": _raw_setting(raw, root) if raw is not None else None},
        "clean": {"on_bad_utf8": getattr(args, "on_bad_utf8", None)},
        "tokenizer": {"vocab_size": getattr(args, "vocab_size", None), "model_type": getattr(args, "model_type", None)},
    }


def resolve_config(args: argparse.Namespace) -> tuple[Config, Path, Path, Optional[Config]]:
    """(config: the file or defaults, then --set, then flags; root; the config's path; the file's config or None)."""
    if args.config is not None:
        path, root = args.config, config_root(args.config)
        existing = load_config(path)
    else:
        root = (args.root or Path(".")).resolve()
        path = root / CONFIG_RELPATH
        existing = load_config(path) if path.is_file() else None
    config = (existing or Config()).override(args.overrides)
    for section, values in _flag_values(args, root).items():
        config = config.replace(section, **values)
    return config, root, path, existing


def save_if_changed(config: Config, path: Path, existing: Optional[Config]) -> None:
    """After a successful run: the config file describes the outputs beside it."""
    if existing is None:
        save_config(config, path)
        print(f"wrote {path} (defaults{' + flags' if config != Config() else ''})")
    elif config != existing:
        save_config(config, path)
        print(f"updated {path}: {', '.join(_changes(existing, config))}")


def _changes(old: Config, new: Config) -> list[str]:
    a, b = old.to_dict(), new.to_dict()
    return [f"{s}.{k} {a[s][k]!r} -> {b[s][k]!r}" for s in a for k in a[s] if a[s][k] != b[s][k]]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "workers", None) is not None and args.workers < 0:
        raise UserError(f"--workers must be >= 1 (0: all cores), got {args.workers}")
    if args.command == "sample":
        from fastpack.corpus.sample import write_sample_corpus

        if args.out.exists() and not args.out.is_dir():
            raise UserError(f"--out {args.out}: an existing file; the sample needs a folder (it is created)")
        _say_reclaimed(reclaim_temps(args.out))
        result = write_sample_corpus(args.out, size_mb=args.size_mb, seed=args.seed, bad_utf8=args.bad_utf8)
        print(f"sample: {len(result.files)} files, {result.bytes / 1e6:.2f} MB -> {result.out_dir}")
        return 0

    from fastpack.corpus import pipeline
    from fastpack.corpus.progress import show_progress_default

    config, root, path, existing = resolve_config(args)
    _say_reclaimed(reclaim_temps(*_output_folders(config, root)))
    options = dict(force=args.force, show_progress=show_progress_default(args.show_progress))
    if args.command == "all":
        results = pipeline.prepare_corpus(config, root, workers=args.workers or None, log=_say, **options)
        save_if_changed(config, path, existing)
        if all(r.skipped for r in results):
            print("all: nothing to do, every output is up to date (--force rebuilds)")
        return 0
    if args.command in ("clean", "tokenize"):
        options["workers"] = args.workers or None
    stage = {"clean": pipeline.clean_corpus, "split": pipeline.split_corpus,
             "tokenizer": pipeline.train_tokenizer, "tokenize": pipeline.tokenize_splits}[args.command]
    _say(stage(config, root, **options).message)
    save_if_changed(config, path, existing)
    return 0


def _say(message: str) -> None:
    print(message, flush=True)


def _output_folders(config: Config, root: Path) -> list[Path]:
    """Every folder a stage writes into: where a killed stage left its temps."""
    keys = ("splits_dir", "tokenizer_dir", "tokenized_dir", "reports_dir")
    return [root / "config", config.paths.resolve(root, "preprocessed").parent,
            *(config.paths.resolve(root, k) for k in keys)]


def _say_reclaimed(reclaimed: Reclaimed) -> None:
    if reclaimed:
        _say(reclaimed.describe())
