"""What goes into a bundle: the table of bundle paths, and its resolution against a data root.

Bundle paths are fixed (the layout the Kaggle runner expects); source paths come from the data
root's `config/training_config.json` (`paths` section, defaults when absent):

    group         bundle path                                  source                       flag
    config        config/training_config.json                  config/training_config.json  required
    tokenizer     tokenizer/{sp_model.model,sp_model.vocab,    paths.tokenizer_dir          required
                  tokenizer_info.json}
    splits        dataset/splits/{train,val,test}.jsonl        paths.splits_dir             required
    tokenized     dataset/tokenized/{split}_tokens.jsonl       paths.tokenized_dir          required
    reports       reports/{preprocessing_summary.json,         paths.reports_dir            --include-reports
                  clean_noise_report.json}, reports/*_summary.json
    preprocessed  dataset/preprocessed/                        paths.preprocessed           --include-preprocessed
                  all_novels_preprocessed_clean.jsonl
    extra         as matched, relative to the data root        --include-extra GLOB         optional
    code          code/fastpack-*.whl, code/INSTALL.md         (built, see wheel.py)        --include-code

When the config's paths differ from the bundle layout, the bundled config is rewritten with its
`paths` pointing at the bundle layout (manifest origin "rewritten"), so that on Kaggle, with the
bundle root as the root, every stage finds the bundled files.

Every source must resolve inside the data root (symlinks included): a bundle is uploaded
publicly more often than people intend, so nothing outside the root is ever picked up.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Optional

from fastpack.config import CONFIG_RELPATH, SPLITS, Config, PathsConfig
from fastpack.errors import UserError
from fastpack.tokenizer_info import MODEL_FILE, TOKENIZER_INFO, VOCAB_FILE

MANIFEST_NAME = "bundle_manifest.json"
KAGGLE_METADATA_NAME = "dataset-metadata.json"
RESERVED = (MANIFEST_NAME, KAGGLE_METADATA_NAME)  # written by the bundler, never copied from the root

# The `paths` values a bundled config must hold so that, with the bundle root as its root, every
# stage finds the bundled files. They are the config defaults (a test keeps them equal).
BUNDLE_PATHS = {
    "tokenizer_dir": "tokenizer",
    "splits_dir": "dataset/splits",
    "tokenized_dir": "dataset/tokenized",
    "reports_dir": "reports",
    "preprocessed": "dataset/preprocessed/all_novels_preprocessed_clean.jsonl",
}
REPORT_FILES = ("preprocessing_summary.json", "clean_noise_report.json")
REPORT_PATTERN = "*_summary.json"


@dataclass(frozen=True, slots=True)
class Item:
    """One row of the table: a bundle path and where its source lives (relative to the data root)."""

    group: str
    bundle_path: str
    source: str
    required: bool
    pattern: bool = False  # `source` is a glob; `bundle_path` is the folder its matches land in


def table(paths: PathsConfig, *, include_reports: bool = False, include_preprocessed: bool = False) -> list[Item]:
    """The rows to bundle for these options, sources taken from the config's `paths`."""
    tok, spl, tkd = paths.tokenizer_dir, paths.splits_dir, paths.tokenized_dir
    items = [Item("config", CONFIG_RELPATH.as_posix(), CONFIG_RELPATH.as_posix(), True)]
    items += [Item("tokenizer", f"{BUNDLE_PATHS['tokenizer_dir']}/{n}", f"{tok}/{n}", True)
              for n in (MODEL_FILE, VOCAB_FILE, TOKENIZER_INFO)]
    items += [Item("splits", f"{BUNDLE_PATHS['splits_dir']}/{s}.jsonl", f"{spl}/{s}.jsonl", True) for s in SPLITS]
    items += [Item("tokenized", f"{BUNDLE_PATHS['tokenized_dir']}/{s}_tokens.jsonl", f"{tkd}/{s}_tokens.jsonl", True)
              for s in SPLITS]
    if include_reports:
        rep = paths.reports_dir
        items += [Item("reports", f"{BUNDLE_PATHS['reports_dir']}/{n}", f"{rep}/{n}", False) for n in REPORT_FILES]
        items.append(Item("reports", BUNDLE_PATHS["reports_dir"], f"{rep}/{REPORT_PATTERN}", False, pattern=True))
    if include_preprocessed:
        items.append(Item("preprocessed", BUNDLE_PATHS["preprocessed"], paths.preprocessed, False))
    return items


@dataclass(frozen=True, slots=True)
class PlannedFile:
    group: str
    bundle_path: str
    source: Optional[str]  # relative to the data root, as named (None for built files)
    path: Optional[Path]  # absolute source path to read (None when `data` holds the bytes)
    size: int
    required: bool
    origin: str = "copy"  # copy | rewritten | built
    data: Optional[bytes] = None  # the content of a rewritten file
    mtime: int = 0  # the source's, in seconds: the manifest's `created` is the newest


def _planned(group: str, bundle_path: str, source: str, path: Path, required: bool,
             data: Optional[bytes] = None) -> PlannedFile:
    """A source file to copy (or, with `data`, its rewritten content), stat-ed once for its size and mtime."""
    st = path.stat()
    return PlannedFile(group, bundle_path, source, path, st.st_size if data is None else len(data), required,
                       origin="copy" if data is None else "rewritten", data=data, mtime=int(st.st_mtime))


@dataclass(frozen=True, slots=True)
class MissingFile:
    group: str
    bundle_path: str
    source: str
    required: bool
    pattern: bool = False

    def to_dict(self) -> dict:
        return {"group": self.group, "path": self.bundle_path, "source": self.source,
                "required": self.required, "pattern": self.pattern}


@dataclass(slots=True)
class BundlePlan:
    """The resolved table: what to copy (sorted by bundle path) and what is missing."""

    root: Path
    files: list[PlannedFile] = field(default_factory=list)
    missing: list[MissingFile] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def missing_required(self) -> list[MissingFile]:
        return [m for m in self.missing if m.required]

    def require_complete(self) -> None:
        """One error listing every missing required file (the fix is the same for all: run the stage)."""
        missing = self.missing_required
        if missing:
            listed = ", ".join(f"{m.source} ({m.group})" for m in missing)
            raise UserError(f"{len(missing)} required file(s) missing under {self.root}: {listed}; run "
                            f"`python -m fastpack.corpus all --root {self.root}` first, or pass --allow-missing")


def make_plan(root: Path, config: Config, *, include_reports: bool = False,
              include_preprocessed: bool = False, include_extra: Iterable[str] = (),
              exclude: Iterable[Path] = ()) -> BundlePlan:
    """Resolve the table (and the extra globs) against `root`; refuse anything reaching outside it."""
    root_real = root.resolve()
    exclude = [Path(p).resolve() for p in exclude]
    plan = BundlePlan(root=root)
    refused: list[str] = []
    taken: dict[str, PlannedFile] = {}

    def add(planned: PlannedFile) -> None:
        prior = taken.get(planned.bundle_path)
        if prior is None:
            taken[planned.bundle_path] = planned
        elif prior.source != planned.source:
            raise UserError(f"bundle path {planned.bundle_path} would come from both {prior.source} "
                            f"and {planned.source}; narrow the --include-extra pattern")

    for item in table(config.paths, include_reports=include_reports, include_preprocessed=include_preprocessed):
        if item.pattern:
            matches = _glob(root, _rel(item.source, root_real), root_real, exclude, refused)
            for rel, path in matches:
                add(_planned(item.group, f"{item.bundle_path}/{PurePosixPath(rel).name}", rel, path, item.required))
            if not matches:
                plan.missing.append(MissingFile(item.group, f"{item.bundle_path}/{PurePosixPath(item.source).name}",
                                                item.source, item.required, pattern=True))
            continue
        path = root / item.source
        problem = _outside(path, root_real)
        if problem:
            refused.append(f"{item.source} ({problem})")
        elif path.is_file():
            data = _bundled_config(config) if item.group == "config" else None
            add(_planned(item.group, item.bundle_path, _rel(item.source, root_real), path, item.required, data))
        else:
            plan.missing.append(MissingFile(item.group, item.bundle_path, _rel(item.source, root_real),
                                            item.required))

    for pattern in include_extra:
        matches = _glob(root, pattern, root_real, exclude, refused)
        for rel, path in matches:
            if rel in RESERVED:
                refused.append(f"{rel} (reserved name: the bundler writes it)")
                continue
            add(_planned("extra", rel, rel, path, False))
        if not matches:
            plan.missing.append(MissingFile("extra", pattern, pattern, False, pattern=True))

    if refused:
        raise UserError(f"refusing {len(refused)} path(s) that reach outside the data root {root}: "
                        f"{'; '.join(refused[:5])}{f'; and {len(refused) - 5} more' if len(refused) > 5 else ''}. A bundle is often uploaded publicly: copy what you mean "
                        f"to share into the root")
    # The same file named twice (a report matched by its name and by the glob) is one entry.
    plan.files = sorted(taken.values(), key=lambda f: f.bundle_path)
    return plan


def _bundled_config(config: Config) -> Optional[bytes]:
    """The config bytes to bundle when its paths differ from the bundle layout, else None (copy as is)."""
    if all(getattr(config.paths, key) == value for key, value in BUNDLE_PATHS.items()):
        return None
    from fastpack.atomic import json_bytes

    return json_bytes(config.replace("paths", **BUNDLE_PATHS).to_dict())


def _rel(source: str, root_real: Path) -> str:
    """`source` as recorded: relative to the root (an absolute path inside it is made relative)."""
    path = Path(source)
    if path.is_absolute() and path.resolve().is_relative_to(root_real):
        return path.resolve().relative_to(root_real).as_posix()
    return PurePosixPath(source).as_posix()


def _outside(path: Path, root_real: Path) -> Optional[str]:
    """Why `path` reaches outside the root (a `..`, an absolute path or a symlink), or None."""
    real = path.resolve()
    if real == root_real or real.is_relative_to(root_real):
        return None
    via = "a symlink to " if any(p.is_symlink() for p in [path, *path.parents]) else ""
    return f"resolves to {via}{real}"


def _glob(root: Path, pattern: str, root_real: Path, exclude: list[Path],
          refused: list[str]) -> list[tuple[str, Path]]:
    """Files matched by `pattern` under root (a matched folder brings its files), as (relative, path)."""
    pure = PurePosixPath(pattern)
    if not pattern.strip() or pure.is_absolute() or Path(pattern).is_absolute() or ".." in pure.parts:
        refused.append(f"pattern {pattern!r} (patterns are relative to the root and may not use '..')")
        return []
    found: dict[str, Path] = {}
    for match in sorted(root.glob(pattern)):
        candidates = sorted(p for p in match.rglob("*") if not p.is_dir()) if match.is_dir() and not \
            match.is_symlink() else [match]
        for path in candidates:
            rel = path.relative_to(root).as_posix()
            problem = _outside(path, root_real)
            if problem:
                refused.append(f"{rel} matched by {pattern!r} ({problem})")
                continue
            if any(path.resolve() == ex or path.resolve().is_relative_to(ex) for ex in exclude) or \
                    _is_bundler_temp(path, exclude):
                continue
            if path.is_dir():
                continue  # a symlinked folder inside the root: its files are matched by their own names
            if not path.is_file():
                refused.append(f"{rel} matched by {pattern!r} (not a regular file)")
                continue
            found[rel] = path
    return sorted(found.items())


def _is_bundler_temp(path: Path, exclude: list[Path]) -> bool:
    """The bundler's own temp siblings (`.kaggle_bundle.tmp-*`, `.kaggle_bundle.zip.tmp-*`)."""
    for ex in exclude:
        for part in [path, *path.parents]:
            if part.name.startswith(f".{ex.name}.") and part.parent.resolve() == ex.parent:
                return True
    return False
