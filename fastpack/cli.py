"""`python -m fastpack`: pack token files into fixed-length windows (and subcommands).

Kept import-light (no numba, pyarrow or torch here) so `--help` answers at once.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from fastpack.errors import UserError, run_main
from fastpack.modes import MODES

SUBCOMMANDS = {"audit": "fastpack.audit"}  # name -> module with a main(argv)

EPILOG = """\
Without --input/--output, packs every split under the config's tokenized dir
({split}_tokens.jsonl) into its packed dir ({split}.npy + {split}.meta.json), skipping
splits whose meta shows the same sources and parameters. Defaults come from
config/training_config.json (or --config) and the tokenizer's tokenizer_info.json
(eos id, pad id, vocab size); flags override both.

subcommands:
  python -m fastpack audit PACKED [--input FILE ...]   prove where every source token went

examples:
  python -m fastpack --seq-len 1024 --stride 1024
  python -m fastpack --input train_tokens.jsonl --output packed/train.npy --eos-id 3
  python -m fastpack --input a.jsonl b.parquet --output train.pt --seq-len 2048 --stride 1024 --no-eos
  python -m fastpack --input big.jsonl --output train.npy --eos-id 3 --num-shards 4 --shard-index 0
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fastpack",
        description="Pack token JSONL / Parquet / Arrow / Megatron .bin files into contiguous [n_windows, seq_len] arrays.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    io = p.add_argument_group("input and output")
    io.add_argument("--input", nargs="+", metavar="FILE", help="token files, packed in order as one stream")
    io.add_argument("--output", metavar="PATH", help="output array (.npy or .pt); its meta goes beside it")
    io.add_argument("--format", choices=("npy", "pt", "both"), help="default: from the output's suffix")
    io.add_argument("--dtype", choices=("int32", "uint16", "auto"), help="default int32; auto: uint16 when vocab <= 65,536")
    io.add_argument("--field", metavar="NAME", help="the ids field (default: input_ids, ids, tokens or token_ids)")
    io.add_argument("--config", metavar="PATH", help="training config (default: ./config/training_config.json if present)")
    io.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config field")

    w = p.add_argument_group("windows")
    w.add_argument("--seq-len", type=int, metavar="N", help="tokens per window (config default 1024)")
    w.add_argument("--stride", type=int, metavar="N", help="start of window k is k*stride (default: seq-len)")
    w.add_argument("--mode", choices=tuple(MODES),
                   help="; ".join(f"{name}: {mode.__doc__.split(';')[0].rstrip('.')}" for name, mode in MODES.items())
                   + " (default concat)")
    eos = w.add_mutually_exclusive_group()
    eos.add_argument("--eos-id", type=int, metavar="N", help="eos after every document (default: the tokenizer's)")
    eos.add_argument("--no-eos", action="store_true", help="no separator between documents")
    w.add_argument("--bos-id", type=int, metavar="N", help="bos before every document")
    w.add_argument("--pad-id", type=int, metavar="N", help="pad token (default: the tokenizer's)")
    w.add_argument("--pad-last", action="store_true", help="pad the last partial window instead of dropping it")
    w.add_argument("--vocab-size", type=int, metavar="N", help="ids >= N are errors (default: the tokenizer's)")

    run = p.add_argument_group("run")
    run.add_argument("--on-bad-line", choices=("error", "skip"), help="default error: stop at the first bad line")
    run.add_argument("--num-shards", type=int, default=1, metavar="N", help="split the inputs into N shards ...")
    run.add_argument("--shard-index", type=int, default=0, metavar="I", help="... and pack shard I (0-based)")
    run.add_argument("--threads", type=int, metavar="N", help="parser threads (default: all cores)")
    run.add_argument("--force", action="store_true", help="re-pack even when the output is up to date")
    run.add_argument("--show-progress", action="store_true", help="a progress bar over input bytes")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        import importlib

        return importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:])
    return run_main(_pack, argv)


def _pack(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    if (args.input is None) != (args.output is None):
        raise UserError("--input and --output go together (or give neither to pack the config's splits)")
    if args.output and Path(args.output).is_dir():
        raise UserError(f"--output {args.output}: an existing folder; name the array file, "
                        f"e.g. --output {Path(args.output) / 'train.npy'}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")
    jobs, config = _plan(args)
    if args.threads:
        import numba

        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    from fastpack.project import pack_split

    for inputs, output in jobs:
        summary = pack_split(config, inputs, output,
                             format=args.format or (None if args.output else config.packing.format),
                             num_shards=args.num_shards, shard_index=args.shard_index,
                             show_progress=args.show_progress, force=args.force)
        print(summary.format())
    return 0


def _plan(args):
    """The config with flags applied and tokenizer defaults filled in, and the (inputs, output) jobs."""
    from fastpack.config import config_root, find_config, load_config
    from fastpack.project import tokenized_splits, with_pack_flags, with_tokenizer_defaults

    config_path = Path(args.config) if args.config else find_config(".")
    config = load_config(config_path, args.set)
    root = config_root(config_path) if config_path else Path.cwd()
    config = with_pack_flags(
        config, seq_len=args.seq_len, stride=args.stride, mode=args.mode, eos_id=args.eos_id, bos_id=args.bos_id,
        pad_id=args.pad_id, vocab_size=args.vocab_size, field=args.field, dtype=args.dtype,
        on_bad_line=args.on_bad_line, add_eos=False if args.no_eos else None, pad_last=True if args.pad_last else None,
    )
    config, filled, info_path = with_tokenizer_defaults(config, root)
    if filled:
        print(f"from {info_path}: " + ", ".join(f"{k} {v}" for k, v in filled.items()), file=sys.stderr)
    if args.input:
        return [(args.input, args.output)], config
    found = tokenized_splits(config, root)
    if not found:
        tokenized = config.paths.resolve(root, "tokenized_dir")
        raise UserError(f"no tokenized splits in {tokenized} (expected train_tokens.jsonl, ...); "
                        "pass --input and --output, or --config for another project")
    packed = config.paths.resolve(root, "packed_dir")
    suffix = ".pt" if config.packing.format == "pt" else ".npy"
    return [([path], packed / f"{split}{suffix}") for split, path in found], config
