"""`python -m bundle [--root DIR] [--out DIR] [flags]` and `python -m bundle verify DIR [--full]`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from fastpack.errors import UserError, run_main

UPLOAD_HINT = "kaggle datasets create -p {out} --dir-mode zip"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bundle",
        description="Gather the files to upload to Kaggle into one folder (and zip), with a manifest. "
                    "Check a bundle with `python -m bundle verify DIR [--full]`.",
        epilog="Upload: kaggle datasets create -p kaggle_bundle --dir-mode zip (plain `create` skips subfolders).")
    p.add_argument("--root", type=Path, default=Path("."),
                   help="data root: the folder holding config/training_config.json (default: .)")
    p.add_argument("--out", type=Path, default=Path("kaggle_bundle"),
                   help="bundle folder to (re)create (default: kaggle_bundle)")
    p.add_argument("--include-reports", action="store_true", help="add reports/*_summary.json and the QA reports")
    p.add_argument("--include-preprocessed", action="store_true",
                   help="add dataset/preprocessed/all_novels_preprocessed_clean.jsonl")
    p.add_argument("--include-extra", action="extend", nargs="+", default=[], metavar="GLOB",
                   help="add files matching GLOB, relative to the data root (repeatable)")
    p.add_argument("--include-code", action="store_true",
                   help="add a wheel of fastpack and code/install.py in code/, for the offline install line on Kaggle")
    p.add_argument("--no-kernel-cache", dest="kernel_cache", action="store_false",
                   help="leave the precompiled kernels out of the wheel (then the first pack on Kaggle compiles, ~10 s)")
    p.add_argument("--kernel-python", action="append", default=[], metavar="PYTHON",
                   help="also precompile the kernels with this interpreter (with numpy and numba: the Python and "
                        "numba of the target, e.g. Kaggle's), repeatable; the running one always does")
    p.add_argument("--include-deps", nargs="*", metavar="NAME",
                   help="also wheels of these runtime dependencies in code/wheels/, for the target below (implies "
                        "--include-code; default names: numba llvmlite orjson, which Kaggle's image may lack)")
    p.add_argument("--python-version", metavar="X.Y",
                   help="target Python of --include-deps (default 3.13: Kaggle's image follows Colab, on 3.13 since "
                        "August 2026; check `python --version` in the notebook)")
    p.add_argument("--platform", action="append", default=[], metavar="TAG",
                   help="target platform of --include-deps, repeatable (default: manylinux2014_x86_64 and "
                        "manylinux_2_28_x86_64)")
    p.add_argument("--deps-find-links", metavar="DIR",
                   help="take --include-deps wheels from this folder (pip --no-index --find-links) instead of PyPI")
    p.add_argument("--zip", action="store_true", help="also write OUT.zip beside the folder (deterministic)")
    p.add_argument("--allow-missing", action="store_true",
                   help="bundle even when required files are missing (recorded in the manifest)")
    p.add_argument("--dry-run", action="store_true", help="print the plan (files, sizes, missing); write nothing")
    p.add_argument("--kaggle-id", metavar="OWNER/SLUG", help="write dataset-metadata.json for the Kaggle CLI")
    p.add_argument("--title", help="dataset title, 6-50 characters (default: the slug)")
    p.add_argument("--license", help="exactly one Kaggle license name, e.g. CC0-1.0, copyright-authors, unknown")
    p.add_argument("--show-progress", action="store_true", help="progress bars over bytes")
    return p


def verify_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bundle verify",
                                description="Check a bundle against its bundle_manifest.json; exit 2 on any "
                                            "missing, extra or changed file.")
    p.add_argument("bundle", type=Path, help="the bundle folder (the one holding bundle_manifest.json)")
    p.add_argument("--full", action="store_true", help="compare sha256 of every file (default: sizes only)")
    p.add_argument("--show-progress", action="store_true", help="a progress bar over bytes (with --full)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["verify"]:
        return _verify(verify_parser().parse_args(argv[1:]))
    return _build(build_parser().parse_args(argv))


def _build(args: argparse.Namespace) -> int:
    from bundle.build import BundleOptions, build_bundle
    from bundle.deps import parse_target

    options = BundleOptions(
        root=args.root, out=args.out, include_reports=args.include_reports,
        include_preprocessed=args.include_preprocessed, include_extra=tuple(args.include_extra), zip=args.zip,
        allow_missing=args.allow_missing, dry_run=args.dry_run, kaggle_id=args.kaggle_id, title=args.title,
        license=args.license, include_code=args.include_code, show_progress=args.show_progress,
        kernel_cache=args.kernel_cache, kernel_pythons=tuple(args.kernel_python),
        include_deps=parse_target(args.include_deps, args.python_version, args.platform, args.deps_find_links))
    result = build_bundle(options)
    if options.dry_run:
        return 0
    totals = result.manifest.totals
    rate = totals["bytes"] / 1e6 / max(result.copy_seconds, 1e-9)
    print(f"bundled {totals['files']} file(s), {totals['bytes']:,} bytes into {result.out}/ in "
          f"{result.seconds:.2f} s (copy+sha256 {result.copy_seconds:.2f} s, {rate:.0f} MB/s)")
    if result.zip_path is not None:
        print(f"zip: {result.zip_path} ({result.zip_path.stat().st_size:,} bytes, {result.zip_seconds:.2f} s)")
    for m in result.plan.missing:
        print(f"missing ({'required' if m.required else 'optional'}): {m.bundle_path} <- {m.source}")
    for note in result.notes:
        print(f"note: {note}")
    if options.kaggle_id:
        print(f"upload: {UPLOAD_HINT.format(out=result.out)}")
    else:
        print(f"upload: pass --kaggle-id OWNER/SLUG --license NAME, then {UPLOAD_HINT.format(out=result.out)}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from bundle.verify import verify_bundle

    report = verify_bundle(args.bundle, full=args.full, show_progress=args.show_progress)
    for line in report.lines():
        print(line)
    if not report.ok:
        first = report.problems[0]
        raise UserError(f"bundle {args.bundle} does not match its manifest ({len(report.problems)} problem(s), "
                        f"first: {first})")
    return 0


def run(argv: Sequence[str] | None = None) -> int:
    return run_main(main, argv)
