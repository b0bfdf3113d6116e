"""Build a bundle: plan -> copy+hash into a temp sibling -> manifest -> zip -> swap into place.

Nothing is written until every check has passed (missing files, outside-root paths, the Kaggle
metadata, the output folder). The new bundle is assembled in `.kaggle_bundle.tmp-*` beside the
output and swapped in by rename, so an interrupted build leaves the previous bundle as it was;
the zip is renamed into place right after the swap.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from fastpack._version import __version__
from fastpack import faults
from fastpack.atomic import atomic_path, naming, reclaim_temps, temp_path_for, write_json_atomic
from fastpack.config import Config, find_config, load_config
from fastpack.errors import UserError

from bundle.copy import byte_bar, copy_and_hash, hash_file
from bundle.layout import KAGGLE_METADATA_NAME, MANIFEST_NAME, BundlePlan, PlannedFile, make_plan
from bundle.manifest import FileEntry, Manifest, created_from
from bundle.zipper import write_zip, zip_path_for

if TYPE_CHECKING:
    from bundle.deps import DepsTarget

MANY_FILES = 100  # Kaggle caps a dataset's file count; past this, say so


@dataclass(frozen=True, kw_only=True)
class BundleOptions:
    root: Path = Path(".")
    out: Path = Path("kaggle_bundle")
    include_reports: bool = False
    include_preprocessed: bool = False
    include_extra: tuple[str, ...] = ()
    zip: bool = False
    allow_missing: bool = False
    dry_run: bool = False
    kaggle_id: Optional[str] = None
    title: Optional[str] = None
    license: Optional[str] = None
    include_code: bool = False
    include_deps: Optional["DepsTarget"] = None  # dependency wheels in code/wheels (implies include_code)
    kernel_cache: bool = True  # the wheel carries the default pack's compiled kernels (fastpack.kernel_cache)
    kernel_pythons: tuple[str, ...] = ()  # also compiled by these interpreters (other Python/numba targets)
    show_progress: bool = False

    def __post_init__(self) -> None:
        if self.include_deps is not None:
            object.__setattr__(self, "include_code", True)

    def recorded(self) -> dict:
        """The options kept in the manifest: not root/out (local folder names in a public upload)."""
        return {"include_reports": self.include_reports, "include_preprocessed": self.include_preprocessed,
                "include_extra": list(self.include_extra), "zip": self.zip, "allow_missing": self.allow_missing,
                "kaggle_id": self.kaggle_id, "title": self.title, "license": self.license,
                "include_code": self.include_code, "kernel_cache": self.include_code and self.kernel_cache,
                "deps_target": self.include_deps.recorded() if self.include_deps is not None else None}


@dataclass(slots=True)
class BuildResult:
    out: Path
    zip_path: Optional[Path]
    plan: BundlePlan
    manifest: Optional[Manifest] = None  # None for a dry run
    seconds: float = 0.0  # the whole build
    copy_seconds: float = 0.0  # copy + hash of every file
    zip_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def build_bundle(options: BundleOptions, log: Callable[[str], None] = print) -> BuildResult:
    """Gather the data root's artifacts into `options.out` (and its zip); see the module docstring."""
    start = time.perf_counter()
    root, out = Path(options.root), Path(options.out)
    if not root.is_dir():
        raise UserError(f"--root {root}: data root not found (the folder holding config/)")
    _check_out(root, out)
    zip_path = zip_path_for(out) if options.zip else None
    meta = None
    if options.kaggle_id is not None:
        from bundle.kaggle_meta import dataset_metadata

        meta = dataset_metadata(options.kaggle_id, options.title, options.license)
    elif options.title is not None or options.license is not None:
        raise UserError("--title and --license describe the Kaggle dataset: pass them with --kaggle-id OWNER/SLUG")
    if options.include_code:
        from bundle.wheel import check_build_tools, project_root

        project_root()  # fail before copying anything
        check_build_tools()

    config_file = find_config(root)
    config = load_config(config_file) if config_file is not None else Config()
    plan = make_plan(root, config, include_reports=options.include_reports,
                     include_preprocessed=options.include_preprocessed, include_extra=options.include_extra,
                     exclude=[out, zip_path_for(out)])
    result = BuildResult(out=out, zip_path=zip_path, plan=plan)
    if options.dry_run:
        for line in describe_plan(plan, options):
            log(line)
        if not options.allow_missing:
            plan.require_complete()
        return result
    if not options.allow_missing:
        plan.require_complete()

    reclaimed = reclaim_temps(out.parent)  # `.NAME.tmp-*` folders and zips of killed builds
    if reclaimed:
        result.notes.append(reclaimed.describe())
    tmp = temp_path_for(out)
    with naming(tmp):
        tmp.mkdir(parents=True)
    try:
        with naming(out):  # a write on a full disk names no file
            manifest = _assemble_and_swap(plan, tmp, out, zip_path, options, meta, result)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.manifest, result.seconds = manifest, time.perf_counter() - start
    if len(manifest.files) > MANY_FILES:
        result.notes.append(f"{len(manifest.files)} files: Kaggle caps a dataset's file count; upload with "
                            f"--dir-mode zip, or narrow --include-extra")
    return result


def _assemble_and_swap(plan: BundlePlan, tmp: Path, out: Path, zip_path: Optional[Path], options: BundleOptions,
                       meta: Optional[dict], result: BuildResult) -> Manifest:
    """Fill the temp folder, zip it when asked, then put it in place of `out`."""
    manifest = _assemble(plan, tmp, options, meta, result)
    if zip_path is None:
        _swap(tmp, out)
        result.notes += _drop_stale_zip(zip_path_for(out))
        return manifest
    with atomic_path(zip_path) as tmp_zip:
        names = [e.path for e in manifest.files] + [MANIFEST_NAME]
        total = manifest.totals["bytes"] + (tmp / MANIFEST_NAME).stat().st_size
        zip_start = time.perf_counter()
        with byte_bar(total, "zip", options.show_progress) as progress:
            write_zip(tmp, tmp_zip, names, progress)
        result.zip_seconds = time.perf_counter() - zip_start
        _swap(tmp, out)
    return manifest


def _assemble(plan: BundlePlan, tmp: Path, options: BundleOptions, meta: Optional[dict], result: BuildResult) -> Manifest:
    """Fill the temp folder: the copies (hashed on the way), the wheel, the manifest, the Kaggle metadata."""
    start = time.perf_counter()
    entries = _copy_all(plan, tmp, options.show_progress)
    result.copy_seconds = time.perf_counter() - start
    if options.include_code:
        entries += _add_code(tmp, options)
    manifest = Manifest(fastpack_version=__version__, created=created_from(f.mtime for f in plan.files),
                        options=options.recorded(), files=entries, missing=plan.missing)
    manifest.write(tmp)
    if meta is not None:
        write_json_atomic(tmp / KAGGLE_METADATA_NAME, meta)
    return manifest


def describe_plan(plan: BundlePlan, options: BundleOptions) -> list[str]:
    """The dry run's report: each file with its size and source, the missing ones, the totals."""
    lines = [f"plan for {options.out} (from {plan.root}):"]
    for f in plan.files:
        via = "" if f.origin == "copy" else f"  [{f.origin}: paths set to the bundle layout]"
        lines.append(f"  {f.size:>14,}  {f.bundle_path}  <- {f.source}{via}")
    if options.include_code:
        lines.append(f"  {'(built)':>14}  code/fastpack-*.whl, code/install.py, code/INSTALL.md")
    if options.include_deps is not None:
        t = options.include_deps
        lines.append(f"  {'(download)':>14}  code/wheels/: {', '.join(t.all_names())} for Python {t.python_version} "
                     f"on {', '.join(t.platforms)}")
    for m in plan.missing:
        kind = "required" if m.required else "optional"
        lines.append(f"  {'MISSING':>14}  {m.bundle_path}  <- {m.source}  ({kind}, {m.group})")
    lines.append(f"total: {len(plan.files)} file(s), {plan.total_bytes:,} bytes; missing: "
                 f"{len(plan.missing_required)} required, {len(plan.missing) - len(plan.missing_required)} optional")
    extras = [MANIFEST_NAME] + ([KAGGLE_METADATA_NAME] if options.kaggle_id else [])
    lines.append(f"would write {options.out}/ ({', '.join(extras)})"
                 + (f" and {zip_path_for(Path(options.out))}" if options.zip else "") + "; dry run: nothing written")
    return lines


def _check_out(root: Path, out: Path) -> None:
    """The output may replace an earlier bundle or an empty folder, never anything else."""
    root_real, out_real = root.resolve(), out.resolve()
    if out_real == root_real or root_real.is_relative_to(out_real):
        raise UserError(f"--out {out} would replace the data root {root}; choose another folder")
    _check_replaceable(out)


def _check_replaceable(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UserError(f"--out {out} exists and is not a folder")
    if out.is_dir() and not (out / MANIFEST_NAME).is_file() and any(out.iterdir()):
        raise UserError(f"--out {out} is not empty and is not a bundle (no {MANIFEST_NAME}); refusing to replace "
                        f"it: choose another --out or remove it")


def _copy_all(plan: BundlePlan, tmp: Path, show_progress: bool) -> list[FileEntry]:
    entries = []
    with byte_bar(plan.total_bytes, "bundle", show_progress) as progress:
        for f in plan.files:
            dst = tmp / f.bundle_path
            if f.data is not None:
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(f.data)
                size, digest = len(f.data), hashlib.sha256(f.data).hexdigest()
                if progress is not None:
                    progress(size)
            else:
                size, digest = copy_and_hash(f.path, dst, progress)
            entries.append(_entry(f, size, digest))
    return entries


def _entry(f: PlannedFile, size: int, digest: str) -> FileEntry:
    return FileEntry(path=f.bundle_path, source=f.source, size=size, sha256=digest, group=f.group,
                     required=f.required, origin=f.origin)


def _add_code(tmp: Path, options: BundleOptions) -> list[FileEntry]:
    """code/: the project's wheel, install.py (the one install line runs it), INSTALL.md, code/wheels/."""
    from bundle.wheel import INSTALL_NAME, INSTALLER_NAME, build_wheel, install_doc, installer_source

    deps = options.include_deps
    wheel = build_wheel(tmp / "code", kernel_cache=options.kernel_cache, kernel_pythons=options.kernel_pythons)
    doc = tmp / "code" / INSTALL_NAME
    doc.write_text(install_doc(wheel.name, deps), encoding="utf-8")
    installer = tmp / "code" / INSTALLER_NAME
    installer.write_bytes(installer_source())
    paths = [wheel, installer, doc]
    if deps is not None:
        from bundle.deps import DEPS_DIR, download_wheels

        paths += download_wheels(deps, tmp / DEPS_DIR)
    entries = []
    for path in paths:
        size, digest = hash_file(path)
        entries.append(FileEntry(path=path.relative_to(tmp).as_posix(), source=None, size=size, sha256=digest,
                                 group="code", required=False, origin="built"))
    return entries


def _swap(tmp: Path, out: Path) -> None:
    """Put the new bundle in place: rename the old one aside, rename the new one in, delete the old."""
    faults.before_commit(out)
    if not out.exists():
        os.rename(tmp, out)
        return
    _check_replaceable(out)  # still a bundle (or empty): nothing else is ever removed
    # Named as a temp: if a kill leaves it, the next build reclaims it (the bundle is rebuilt from its inputs).
    old = temp_path_for(out)
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _drop_stale_zip(zip_path: Path) -> list[str]:
    """A zip left by an earlier `--zip` build no longer matches the folder: remove it if it is ours."""
    if not zip_path.is_file():
        return []
    try:
        with zipfile.ZipFile(zip_path) as zf:
            ours = MANIFEST_NAME in zf.namelist()
    except (zipfile.BadZipFile, OSError):
        ours = False
    if not ours:
        return [f"{zip_path} was left as it is (not a bundle zip); it does not match the new bundle"]
    zip_path.unlink()
    return [f"removed {zip_path} from an earlier --zip build (it no longer matched; pass --zip to rebuild it)"]
