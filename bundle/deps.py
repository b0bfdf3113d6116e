"""`--include-deps`: wheels of the runtime dependencies the Kaggle image may lack, in `code/wheels/`.

`pip download --only-binary=:all: --no-deps --python-version V --platform P --implementation cp`
fetches wheels for the target interpreter, not the one running the bundler; `code/install.py`
installs from them with `pip install --no-index --find-links code/wheels` the ones that are not
installed there. The target is recorded in the manifest (options.deps_target).

Default target: CPython 3.13 (Kaggle's image follows Colab's runtime, which moved to 3.13 in
August 2026) on x86-64 Linux, glibc 2.17 or newer wheels (`manylinux2014`) and 2.28 ones (numba and
llvmlite 0.6x+ ship only `manylinux_2_28` for 3.13). Default names: numba (with llvmlite, which it
needs) and orjson: the packages of ours least sure to be in the image. numpy, torch, pyarrow,
matplotlib, tqdm and sentencepiece come with it; name any of them to carry it anyway.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from fastpack.errors import UserError

DEFAULT_DEPS = ("numba", "llvmlite", "orjson")
DEFAULT_PYTHON = "3.13"
DEFAULT_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
NEEDS = {"numba": ("llvmlite",)}  # pulled in by name: --no-deps downloads only what is named
DEPS_DIR = "code/wheels"


@dataclass(frozen=True)
class DepsTarget:
    names: tuple[str, ...] = DEFAULT_DEPS
    python_version: str = DEFAULT_PYTHON
    platforms: tuple[str, ...] = DEFAULT_PLATFORMS
    find_links: Optional[str] = None  # download from this folder with --no-index instead of PyPI (offline builds, tests)

    def __post_init__(self) -> None:
        if not self.names:
            raise UserError("--include-deps: name at least one package (or none for the default list)")
        parts = self.python_version.split(".")
        if len(parts) != 2 or not all(p.isdigit() for p in parts) or parts[0] != "3":
            raise UserError(f"--python-version: expected like 3.12, got {self.python_version!r}")

    def all_names(self) -> tuple[str, ...]:
        out: list[str] = []
        for name in self.names:
            for n in (name, *NEEDS.get(name.lower(), ())):
                if n not in out:
                    out.append(n)
        return tuple(out)

    def recorded(self) -> dict:
        return {"names": list(self.all_names()), "python_version": self.python_version,
                "platforms": list(self.platforms), "implementation": "cp"}


def download_wheels(target: DepsTarget, dest: Path) -> list[Path]:
    """Download one wheel per name for the target into `dest`; return them, sorted."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-deps", "--implementation", "cp",
           "--python-version", target.python_version, "--disable-pip-version-check", "-q", "-d", str(dest)]
    for platform in target.platforms:
        cmd += ["--platform", platform]
    if target.find_links is not None:
        cmd += ["--no-index", "--find-links", str(target.find_links)]
    cmd += list(target.all_names())
    env = {**os.environ, "PIP_NO_INPUT": "1"}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-2:])
        raise UserError(f"--include-deps: pip download for Python {target.python_version} on "
                        f"{', '.join(target.platforms)} failed (exit {result.returncode}): {tail}")
    return sorted(dest.glob("*.whl"))


def parse_target(names: Optional[Sequence[str]], python_version: Optional[str], platforms: Sequence[str],
                 find_links: Optional[str]) -> Optional[DepsTarget]:
    """The CLI's flags as a target; None when --include-deps was not given."""
    if names is None:
        if python_version or platforms or find_links:
            raise UserError("--python-version, --platform and --deps-find-links describe --include-deps: pass it too")
        return None
    split = tuple(n for arg in names for n in arg.replace(",", " ").split())
    return DepsTarget(names=split or DEFAULT_DEPS, python_version=python_version or DEFAULT_PYTHON,
                      platforms=tuple(platforms) or DEFAULT_PLATFORMS, find_links=find_links)
