"""`bundle_manifest.json`: what a bundle holds, so the receiving side can prove it arrived intact.

    {
      "kind": "fastpack-bundle", "format_version": 1,
      "fastpack_version": "0.1.0",
      "created": "2025-01-31T12:00:00Z",         # UTC mtime of the newest input (SOURCE_DATE_EPOCH pins it)
      "options": {...},                          # the command's options, minus --root/--out (they name
                                                 # local folders, and the bundle is often public)
      "files": [                                 # sorted by path; never lists itself or dataset-metadata.json
        {"path": "dataset/splits/train.jsonl",   # bundle path (POSIX, relative to the bundle root)
         "source": "dataset/splits/train.jsonl", # relative to the data root; null for built files
         "size": 123, "sha256": "<64 hex>",
         "group": "splits", "required": true,
         "origin": "copy" | "rewritten" | "built"}   # rewritten: the config with its paths set to
      ],                                             # the bundle layout; built: the wheel, INSTALL.md
      "missing": [                               # asked for but absent (only with --allow-missing
        {"path", "source", "group", "required",  # when required); a pattern that matched nothing
         "pattern": false}                       # has pattern: true
      ],
      "totals": {"files": 13, "bytes": 456, "missing_required": 0, "missing_optional": 1}
    }

Written with sorted keys and a trailing newline (`write_json_atomic`): the same bundle gives the
same bytes. Readers reject an unknown `format_version` and any path that is absolute or uses `..`.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Optional

from fastpack.atomic import write_json_atomic
from fastpack.errors import UserError
from fastpack.jsonfile import read_json

from bundle.install_script import SEARCH_DEPTH
from bundle.install_script import find_bundle_roots as search_bundle_roots
from bundle.layout import MANIFEST_NAME, MissingFile

KIND = "fastpack-bundle"
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    source: Optional[str]
    size: int
    sha256: str
    group: str
    required: bool
    origin: str = "copy"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "source": self.source, "size": self.size, "sha256": self.sha256,
                "group": self.group, "required": self.required, "origin": self.origin}


@dataclass(frozen=True, slots=True)
class Manifest:
    fastpack_version: str
    created: str
    options: dict[str, Any]
    files: list[FileEntry]
    missing: list[MissingFile] = field(default_factory=list)
    format_version: int = FORMAT_VERSION

    @property
    def totals(self) -> dict[str, int]:
        return {"files": len(self.files), "bytes": sum(f.size for f in self.files),
                "missing_required": sum(m.required for m in self.missing),
                "missing_optional": sum(not m.required for m in self.missing)}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND, "format_version": self.format_version, "fastpack_version": self.fastpack_version,
                "created": self.created, "options": self.options,
                "files": [f.to_dict() for f in sorted(self.files, key=lambda f: f.path)],
                "missing": [m.to_dict() for m in sorted(self.missing, key=lambda m: (m.bundle_path, m.source))],
                "totals": self.totals}

    def write(self, bundle_root: Path) -> Path:
        path = Path(bundle_root) / MANIFEST_NAME
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def from_dict(cls, data: Any, source: str = MANIFEST_NAME) -> "Manifest":
        try:
            if data.get("kind") != KIND:
                raise UserError(f"{source}: not a fastpack bundle manifest (kind {data.get('kind')!r})")
            if data.get("format_version") != FORMAT_VERSION:
                raise UserError(f"{source}: unsupported format_version {data.get('format_version')!r} "
                                f"(this fastpack reads {FORMAT_VERSION}); rebuild the bundle or upgrade fastpack")
            files = [FileEntry(path=_safe(f["path"], source), source=f["source"], size=int(f["size"]),
                               sha256=str(f["sha256"]), group=f["group"], required=bool(f["required"]),
                               origin=f.get("origin", "copy")) for f in data["files"]]
            missing = [MissingFile(group=m["group"], bundle_path=m["path"], source=m["source"],
                                   required=bool(m["required"]), pattern=bool(m.get("pattern", False)))
                       for m in data.get("missing", [])]
            return cls(fastpack_version=data["fastpack_version"], created=data["created"],
                       options=dict(data.get("options", {})), files=files, missing=missing)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{source}: malformed manifest ({type(exc).__name__}: {exc})") from None


def _safe(path: Any, source: str) -> str:
    """A bundle path must stay inside the bundle: relative, POSIX, no `..`."""
    if not isinstance(path, str) or not path:
        raise UserError(f"{source}: a file entry has no path")
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or "\\" in path or pure.as_posix() != path:
        raise UserError(f"{source}: unsafe path {path!r} in the manifest (must be relative, POSIX, without '..')")
    return path


def created_from(mtimes: Iterable[int]) -> str:
    """UTC time of the newest input (its mtime, seconds), so two builds of the same inputs give the same bytes.

    `SOURCE_DATE_EPOCH` (the reproducible-builds convention) pins it instead; no inputs: the epoch.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    try:
        seconds = int(epoch) if epoch else max(mtimes, default=0)
    except ValueError:
        raise UserError(f"SOURCE_DATE_EPOCH must be an integer, got {epoch!r}") from None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def manifest_path(root: str | os.PathLike) -> Path:
    """`ROOT/bundle_manifest.json` (ROOT may also be the manifest itself)."""
    root = Path(root)
    return root if root.name == MANIFEST_NAME and root.is_file() else root / MANIFEST_NAME


def read_manifest(root: str | os.PathLike) -> Manifest:
    """The manifest of the bundle at `root`; a UserError naming the file when absent or malformed."""
    path = manifest_path(root)
    if not path.is_file():
        raise UserError(f"{path.parent}: not a bundle ({MANIFEST_NAME} not found)")
    return Manifest.from_dict(read_json(path, "not found"), source=str(path))


def find_bundle_roots(search_root: str | os.PathLike, max_depth: int = SEARCH_DEPTH) -> list[Path]:
    """Folders under `search_root` (itself included, `max_depth` levels down) holding a manifest.

    Kaggle mounts datasets at `/kaggle/input/<slug>/` or `/kaggle/input/datasets/<owner>/<slug>/`,
    and a `--dir-mode zip` upload may sit one level further down; a found bundle is not searched.
    The search itself lives in the bundle's stdlib-only installer, so the runner and `code/install.py`
    pick the same bundle by construction.
    """
    return search_bundle_roots(Path(search_root), max_depth)
