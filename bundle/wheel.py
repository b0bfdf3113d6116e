"""`--include-code`: a wheel of this project in `code/`, so a Kaggle notebook with internet off can
`pip install --no-index --no-deps /kaggle/input/<dataset>/code/fastpack-*.whl`.

The wheel is built offline with the running Python's pip and setuptools (`pip wheel --no-deps
--no-build-isolation --no-index`), from a copy of the project in a temp folder: the build's
`build/` and `*.egg-info` never land in the checkout, and only the packaging files and the
top-level packages travel. `SOURCE_DATE_EPOCH` (1980-01-01 unless set) makes the same sources
give the same wheel bytes.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from fastpack.errors import UserError

PACKAGING_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in")
DOC_PREFIXES = ("README", "LICENSE", "LICENCE", "COPYING", "NOTICE")
ZIP_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip entry can hold
INSTALL_NAME = "INSTALL.md"
# Our runtime dependencies, and whether we expect the Kaggle image (Colab-based) to ship them.
KAGGLE_PREINSTALLED = ("numpy", "numba", "pyarrow", "orjson", "sentencepiece", "tqdm", "matplotlib", "torch")


def project_root() -> Path:
    """The source checkout holding this `bundle` package (the folder with pyproject.toml)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise UserError(f"--include-code needs the project's source checkout (pyproject.toml beside the bundle "
                        f"package); none at {root}. Run it from a clone of the repository")
    return root


def check_build_tools() -> None:
    missing = [name for name in ("pip", "setuptools") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"--include-code builds the wheel offline and needs {' and '.join(missing)} in "
                        f"{sys.executable}: `{sys.executable} -m pip install setuptools`")


def build_wheel(dest: Path, project: Path | None = None) -> Path:
    """Build the project's wheel into `dest`; return its path."""
    project = project or project_root()
    check_build_tools()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fastpack-wheel-") as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        _copy_sources(project, src)
        env = {**os.environ, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        env.setdefault("SOURCE_DATE_EPOCH", ZIP_EPOCH)
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
               "-q", "-w", str(out), str(src)]
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wheels = sorted(out.glob("*.whl")) if out.is_dir() else []
        if result.returncode != 0 or len(wheels) != 1:
            tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise UserError(f"building the wheel of {project} failed (exit {result.returncode}): {tail}")
        final = dest / wheels[0].name
        shutil.move(str(wheels[0]), final)
    return final


def _copy_sources(project: Path, dst: Path) -> None:
    """Packaging files, README/LICENSE, and every top-level folder that is a Python package."""
    dst.mkdir(parents=True)
    for entry in sorted(project.iterdir()):
        if entry.is_file() and (entry.name in PACKAGING_FILES or entry.name.upper().startswith(DOC_PREFIXES)):
            shutil.copy2(entry, dst / entry.name)
        elif entry.is_dir() and (entry / "__init__.py").is_file():
            shutil.copytree(entry, dst / entry.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def install_doc(wheel_name: str) -> str:
    """`code/INSTALL.md`: how to install the bundled wheel on Kaggle with internet off."""
    deps = ", ".join(KAGGLE_PREINSTALLED)
    return f"""# Installing fastpack on Kaggle without internet

In a notebook with this dataset attached (Add Input), internet off:

```
!pip install --no-index --no-deps /kaggle/input/*/code/{wheel_name}
```

The path depends on how Kaggle mounted the dataset: `/kaggle/input/<slug>/code/`, or
`/kaggle/input/datasets/<owner>/<slug>/code/` (the glob above finds either one level down; use
`find /kaggle/input -name '{wheel_name}'` if it does not).

`--no-deps` because pip cannot fetch anything offline: fastpack's dependencies ({deps})
are expected to come with Kaggle's Python image. Check with
`python -c "import numpy, numba, pyarrow, orjson, sentencepiece, tqdm, matplotlib, torch"`;
`python -m trainer.kaggle_entry` also names any that are missing. For one that is, download its
wheel on a machine with internet (`pip download NAME --only-binary=:all: --no-deps
--python-version 3.11 --platform manylinux2014_x86_64 -d wheels/`, matching Kaggle's Python),
put it under the data root, add it to the bundle with `--include-extra 'wheels/*.whl'` and install
it the same way.
"""
