"""Check a bundle against its manifest: sizes (fast) or sha256 (`full`), plus missing and extra files.

`verify_bundle` reports everything it finds; `check_bundle` raises a UserError naming the first
bad files, for callers (the Kaggle runner) that stop on any mismatch. Nothing is ever written
under the bundle root (on Kaggle it is read-only).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from fastpack.errors import UserError

from bundle.copy import byte_bar, hash_file
from bundle.layout import RESERVED, MissingFile
from bundle.manifest import Manifest, read_manifest

SHOWN = 5  # bad files named in check_bundle's one-line error


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path} ({self.reason})"


@dataclass(slots=True)
class VerifyReport:
    root: Path
    full: bool
    checked: int = 0  # manifest files found and checked
    bytes_checked: int = 0
    missing: list[Problem] = field(default_factory=list)  # in the manifest, not on disk
    extra: list[Problem] = field(default_factory=list)  # on disk, not in the manifest
    changed: list[Problem] = field(default_factory=list)  # size or sha256 differs
    recorded_missing: list[MissingFile] = field(default_factory=list)  # absent when built (--allow-missing)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.changed)

    @property
    def problems(self) -> list[Problem]:
        return [*self.changed, *self.missing, *self.extra]

    def lines(self) -> list[str]:
        mode = "sha256" if self.full else "size"
        out = [f"{'changed' if p in self.changed else 'missing' if p in self.missing else 'extra'}: {p}"
               for p in self.problems]
        out += [f"note: built without {m.bundle_path} ({'required' if m.required else 'optional'}, "
                f"recorded missing in the manifest)" for m in self.recorded_missing]
        verdict = "OK" if self.ok else f"FAILED: {len(self.changed)} changed, {len(self.missing)} missing, " \
                                       f"{len(self.extra)} extra"
        out.append(f"{verdict}: {self.checked} file(s), {self.bytes_checked:,} bytes checked by {mode} in {self.root}")
        return out


def verify_bundle(root: str | os.PathLike, full: bool = False, show_progress: bool = False,
                  manifest: Optional[Manifest] = None) -> VerifyReport:
    """Compare the files under `root` with its `bundle_manifest.json`."""
    root = Path(root)
    if root.is_file():
        raise UserError(f"{root}: is a file; verify takes the bundle folder (extract a zip first)")
    if not root.is_dir():
        raise UserError(f"{root}: bundle folder not found")
    manifest = manifest or read_manifest(root)
    report = VerifyReport(root=root, full=full, recorded_missing=list(manifest.missing))
    listed = {f.path for f in manifest.files}
    present = [f for f in manifest.files if (root / f.path).is_file()]
    absent = [f for f in manifest.files if not (root / f.path).is_file()]
    report.missing = [Problem(f.path, f"listed in the manifest, {f.size:,} bytes") for f in absent]
    with byte_bar(sum(f.size for f in present) if full else 0, "verify", show_progress and full) as progress:
        for entry in present:
            size = (root / entry.path).stat().st_size
            if size != entry.size:
                report.changed.append(Problem(entry.path, f"size {size:,} bytes, manifest says {entry.size:,}"))
                if progress is not None:
                    progress(entry.size)
                continue
            if full:
                _, digest = hash_file(root / entry.path, progress)
                if digest != entry.sha256:
                    report.changed.append(Problem(entry.path, f"sha256 {digest[:12]}..., manifest says "
                                                              f"{entry.sha256[:12]}..."))
                    continue
            report.checked += 1
            report.bytes_checked += size
    report.extra = [Problem(rel, "not in the manifest") for rel in _files_under(root)
                    if rel not in listed and rel not in RESERVED]
    return report


def check_bundle(root: str | os.PathLike, full: bool = False, show_progress: bool = False) -> VerifyReport:
    """`verify_bundle`, raising a UserError that names the bad files when anything does not match."""
    report = verify_bundle(root, full=full, show_progress=show_progress)
    if not report.ok:
        bad = report.problems
        more = f" and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
        named = "; ".join(str(p) for p in bad[:SHOWN])
        raise UserError(f"bundle {report.root} does not match its manifest: {named}{more} "
                        f"(re-upload it, or rebuild with `python -m bundle`)")
    return report


def _files_under(root: Path) -> list[str]:
    """Every file (symlinks included, not followed) under root, as sorted POSIX paths."""
    found = []
    for folder, dirs, files in os.walk(root):
        rel_folder = Path(folder).relative_to(root)
        found += [(rel_folder / name).as_posix() for name in files]
        found += [(rel_folder / d).as_posix() for d in dirs if (Path(folder) / d).is_symlink()]
    return sorted(found)
