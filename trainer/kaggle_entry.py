"""`python -m trainer.kaggle_entry`: on Kaggle, one line from the uploaded bundle to a trained model.

locate the bundle -> verify it against its manifest -> pack every split (cached by its meta)
-> train (resuming from the newest checkpoint, here or in a previous run's output) -> summary.

Nothing is written under the dataset root. Packed arrays go to scratch space outside
/kaggle/working (capped at 20 GB and saved as the notebook's output; packing is cheap to redo),
checkpoints and metrics to <work-dir>/model_output.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

from fastpack.modes import MODES

KAGGLE_INPUT = Path("/kaggle/input")
KAGGLE_WORKING = Path("/kaggle/working")
SESSION_LIMIT_S = 12 * 3600
SESSION_MARGIN_S = 30 * 60  # the final checkpoint, the summary and Kaggle's own saving of the output
DEPENDENCIES = ("numpy", "numba", "pyarrow", "orjson", "sentencepiece", "tqdm", "matplotlib", "torch")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainer.kaggle_entry", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_argument_group("where")
    where.add_argument("--dataset-root", type=Path,
                       help="the bundle (a folder with bundle_manifest.json, or one above it); default: searched "
                            "for under --input-root")
    where.add_argument("--input-root", type=Path, default=KAGGLE_INPUT, help=f"where to search (default {KAGGLE_INPUT})")
    where.add_argument("--work-dir", type=Path,
                       help=f"outputs (default {KAGGLE_WORKING} when it exists, else ./work)")
    where.add_argument("--pack-dir", type=Path,
                       help="packed arrays (default: scratch outside /kaggle/working on Kaggle, else <work-dir>/packed)")
    pack = p.add_argument_group("packing")
    pack.add_argument("--seq-len", type=int, help="window length = model context (packing.seq_len)")
    pack.add_argument("--stride", type=int, help="default: --seq-len")
    pack.add_argument("--mode", choices=tuple(MODES), help="packing.mode")
    pack.add_argument("--format", choices=("npy", "pt"), help="packing.format")
    pack.add_argument("--pad-id", type=int, help="pad token; required when the tokenizer has none and windows are padded")
    train = p.add_argument_group("training")
    train.add_argument("--preset", choices=("tiny", "small", "base"), help="model size (model.preset)")
    train.add_argument("--max-steps", type=int, help="training.max_steps")
    train.add_argument("--time-budget",
                       help="stop cleanly before this much time (11h30m, 90m, seconds), counted from the runner's own "
                            "start (packing included); default training.time_budget, and on Kaggle without either: "
                            "the session's 12 h minus 30 min, counted from the session's start")
    train.add_argument("--resume", default="auto",
                       help="auto: the newest valid checkpoint in the work dir, else in a previous run's output "
                            "attached under --input-root; PATH; or none")
    train.add_argument("--nproc", default="auto", help="processes: auto = one per visible GPU (both T4s via torchrun)")
    steps = p.add_argument_group("steps")
    steps.add_argument("--verify", choices=("size", "full", "none"), default="size",
                       help="check the bundle against its manifest: sizes (fast), sha256 (full), or not")
    steps.add_argument("--skip-pack", action="store_true", help="use the packed arrays already in --pack-dir")
    steps.add_argument("--skip-train", action="store_true", help="stop after packing")
    steps.add_argument("--show-progress", action="store_true", help="progress bars while packing and training")
    steps.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override any config field (repeatable)")
    return p


def missing_dependencies() -> list[str]:
    return [name for name in DEPENDENCIES if importlib.util.find_spec(name) is None]


@contextlib.contextmanager
def step(title: str, timings: dict[str, float]) -> Iterator[None]:
    print(f"==> {title}", flush=True)
    started = time.perf_counter()
    yield
    timings[title] = time.perf_counter() - started
    print(f"    {title}: {timings[title]:.1f} s", flush=True)


def locate_bundle(dataset_root: Optional[Path], input_root: Path) -> Path:
    """The one bundle under dataset_root (or input_root); several or none is a clear error."""
    from bundle import MANIFEST_NAME, find_bundle_roots
    from fastpack.errors import UserError

    search = dataset_root or input_root
    if not search.is_dir():
        raise UserError(f"{search}: not found; pass --dataset-root with the folder holding {MANIFEST_NAME}")
    found = find_bundle_roots(search)
    if not found:
        raise UserError(f"no {MANIFEST_NAME} under {search} (looked 4 levels down): attach the dataset made by "
                        "`python -m bundle`, or pass --dataset-root")
    if len(found) > 1:
        listing = ", ".join(str(f) for f in found)
        raise UserError(f"{len(found)} bundles under {search}: {listing}; pick one with --dataset-root")
    return found[0]


def default_work_dir() -> Path:
    return KAGGLE_WORKING if KAGGLE_WORKING.is_dir() else Path("work")


def default_pack_dir(work_dir: Path) -> Path:
    """Outside /kaggle/working on Kaggle: the output quota is 20 GB and packing is cheap to redo."""
    if work_dir.resolve() == KAGGLE_WORKING.resolve() or _on_kaggle():
        return Path("/kaggle/tmp/fastpack-packed") if Path("/kaggle/tmp").is_dir() else Path("/tmp/fastpack-packed")
    return work_dir / "packed"


def _on_kaggle() -> bool:
    return "KAGGLE_KERNEL_RUN_TYPE" in os.environ


def session_deadline() -> tuple[float, str]:
    """On Kaggle: 12 h after the session (the container's first process) started, minus a margin."""
    started = time.time()
    try:  # /proc/1 started with the session; its start is in clock ticks after boot
        boot = next(float(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
        ticks = int(open("/proc/1/stat").read().rsplit(")", 1)[1].split()[19])
        first = boot + ticks / os.sysconf("SC_CLK_TCK")
        if first <= started:
            started = first
    except (OSError, ValueError, StopIteration, IndexError):
        pass
    deadline = started + SESSION_LIMIT_S - SESSION_MARGIN_S
    return deadline, time.strftime("%H:%M", time.localtime(deadline))


def runner_deadline(flag: Optional[str], configured, started: float) -> tuple[Optional[float], Optional[float], str]:
    """(deadline, its length, a note): a budget counts from the runner's start (`started`), packing included;
    without one, on Kaggle, the session's limit minus its margin; else none."""
    from trainer.budget import parse_duration

    what = "--time-budget" if flag is not None else "training.time_budget"
    total = parse_duration(flag if flag is not None else configured, what)
    if total is not None:
        deadline = started + total
        return deadline, total, f"stops by {time.strftime('%H:%M', time.localtime(deadline))} ({what} from the runner's start)"
    if _on_kaggle():
        deadline, at = session_deadline()
        return deadline, deadline - time.time(), f"stops by {at} (the 12 h session limit minus 30 min)"
    return None, None, ""


def resolve_config(bundle_root: Path, args: argparse.Namespace):
    """The bundle's config with the flags applied and the tokenizer's ids filled in."""
    from fastpack.project import with_pack_flags, with_tokenizer_defaults
    from fastpack.spec import PackSpec
    from trainer.config import CONFIG_RELPATH, load_config

    config = load_config(bundle_root / CONFIG_RELPATH, args.overrides)
    config = with_pack_flags(config, seq_len=args.seq_len, stride=args.stride, mode=args.mode, format=args.format,
                             pad_id=args.pad_id)
    config = config.replace("model", preset=args.preset)
    config, _, _ = with_tokenizer_defaults(config, bundle_root, required=True)
    PackSpec.from_config(config.packing)  # every packing problem now, before any split is packed
    return config


def pack_splits(config, bundle_root: Path, pack_dir: Path, show_progress: bool) -> list:
    from fastpack.errors import UserError
    from fastpack.project import pack_split, tokenized_splits

    found = tokenized_splits(config, bundle_root)
    if "train" not in dict(found):
        tokenized = config.paths.resolve(bundle_root, "tokenized_dir")
        raise UserError(f"{tokenized / 'train_tokens.jsonl'}: the bundle has no tokenized train split")
    fmt = config.packing.format
    summaries = []
    for split, source in found:
        summary = pack_split(config, [source], pack_dir / f"{split}.{fmt}", format=fmt, show_progress=show_progress)
        print("    " + summary.format().replace("\n", "\n    "), flush=True)
        summaries.append(summary)
    return summaries


def find_resume(choice: str, output_dir: Path, input_root: Path, dataset_root: Path) -> Optional[str | Path]:
    """`--resume auto`: the work dir's newest valid checkpoint, else a previous run's attached output.

    Says which it skipped and why; a failed one of the work dir is moved aside, as the trainer does.
    """
    from trainer.checkpoint import CHECKPOINT_DIR
    from trainer.resume import choose_checkpoint_logged

    def newest_valid(dirs: list[Path], move_bad_in: Optional[Path] = None) -> Optional[Path]:
        return choose_checkpoint_logged(dirs, lambda message: print(f"    {message}"), move_bad_in=move_bad_in).path

    if choice != "auto":
        return None if choice == "none" else Path(choice)
    here = newest_valid([output_dir / CHECKPOINT_DIR], move_bad_in=output_dir / CHECKPOINT_DIR)
    if here is not None:
        print(f"    resuming from {here} (this work dir)")
        return here
    roots = [p for p in sorted(input_root.iterdir()) if p.resolve() != dataset_root.resolve()] \
        if input_root.is_dir() else []
    previous = newest_valid(roots)
    if previous is not None:
        print(f"    resuming from {previous} (a previous run's output); new checkpoints go to {output_dir}")
        return previous
    print("    no checkpoint found: starting fresh")
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    missing = missing_dependencies()
    if missing:
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        print(f"error: missing Python packages: {', '.join(missing)}; install them (on an offline notebook: bundle "
              f"their wheels with `python -m bundle --include-deps {' '.join(missing)} --python-version {version}` "
              "and run the install line of code/INSTALL.md)", file=sys.stderr)
        return 2
    from fastpack.errors import run_main

    return run_main(_run, argv)


def _run(argv: Optional[Sequence[str]]) -> int:
    from fastpack.errors import UserError

    args = build_parser().parse_args(argv)
    timings: dict[str, float] = {}
    started = time.time()
    deadline, budget_total, budget_note = runner_deadline(args.time_budget, None, started)  # a bad value fails first
    with step("locate the bundle", timings):
        bundle_root = locate_bundle(args.dataset_root, args.input_root)
        print(f"    bundle: {bundle_root}")
    if args.verify != "none":
        with step(f"verify it against its manifest ({args.verify})", timings):
            from bundle import check_bundle

            report = check_bundle(bundle_root, full=args.verify == "full", show_progress=args.show_progress)
            print(f"    {report.lines()[-1]}")
    config = resolve_config(bundle_root, args)
    if args.time_budget is None:
        deadline, budget_total, budget_note = runner_deadline(None, config.training.time_budget, started)
    work_dir = (args.work_dir or default_work_dir()).resolve()
    pack_dir = (args.pack_dir or default_pack_dir(work_dir)).resolve()
    output_dir = work_dir / "model_output"
    if bundle_root.resolve() in (work_dir, *work_dir.parents) or bundle_root.resolve() in (pack_dir, *pack_dir.parents):
        raise UserError(f"--work-dir and --pack-dir must be outside the dataset root {bundle_root} (it stays read-only)")
    if not args.skip_pack:
        with step(f"pack every split into {pack_dir}", timings):
            pack_splits(config, bundle_root, pack_dir, args.show_progress)
    summary = None
    if not args.skip_train:
        from trainer.train_lm import run_training

        with step("train", timings):
            if budget_note:
                print(f"    time budget: {budget_note}")
            resume = find_resume(args.resume, output_dir, args.input_root, bundle_root)
            summary = run_training(config, root=bundle_root, packed_dir=pack_dir, output_dir=output_dir, resume=resume,
                                   max_steps=args.max_steps, deadline=deadline, budget_total=budget_total,
                                   show_progress=args.show_progress, nproc=args.nproc)
    print(final_summary(summary, bundle_root, pack_dir, output_dir, timings, time.time() - started))
    return 0


def final_summary(summary: Optional[dict], bundle_root: Path, pack_dir: Path, output_dir: Path,
                  timings: dict[str, float], wall: float) -> str:
    def fmt(x, digits=2):
        return "n/a" if x is None else f"{x:.{digits}f}"

    lines = ["", "=== fastpack on Kaggle: done ==="]
    if summary is not None:
        lines += [f"  stopped: {summary.get('stop_reason')} at step {summary.get('step')}, "
                  f"{summary.get('tokens_seen', 0):,} tokens seen",
                  f"  val perplexity {fmt(summary.get('val_ppl'))}, test perplexity {fmt(summary.get('test_ppl'))}",
                  f"  checkpoints: {(summary.get('checkpoints') or {}).get('last')}"]
    lines += [f"  bundle: {bundle_root}", f"  packed: {pack_dir}", f"  outputs: {output_dir}",
              "  time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + f" (total {wall:.1f} s)"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
