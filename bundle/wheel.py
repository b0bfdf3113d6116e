"""`--include-code`: a wheel of this project in `code/` with `code/install.py`, so a Kaggle notebook with
internet off installs it with the one line in INSTALL.md (bundle/install_script.py).

The wheel is built offline with the running Python's pip and setuptools (`pip wheel --no-deps
--no-build-isolation --no-index`), from a copy of the project in a temp folder: the build's
`build/` and `*.egg-info` never land in the checkout, and only the packaging files and the
top-level packages travel. `SOURCE_DATE_EPOCH` (1980-01-01 unless set) makes the same sources
give the same wheel bytes.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from fastpack.errors import UserError

PACKAGING_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in")
DOC_PREFIXES = ("README", "LICENSE", "LICENCE", "COPYING", "NOTICE")
ZIP_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip entry can hold
INSTALL_NAME = "INSTALL.md"
INSTALLER_NAME = "install.py"
# Our runtime dependencies, and whether we expect the Kaggle image (Colab-based) to ship them.
KAGGLE_PREINSTALLED = ("numpy", "numba", "pyarrow", "orjson", "sentencepiece", "tqdm", "matplotlib", "torch")


def project_root() -> Path:
    """The source checkout holding this `bundle` package (the folder with pyproject.toml)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise UserError(f"--include-code needs the project's source checkout (pyproject.toml beside the bundle "
                        f"package); none at {root}. Run it from a clone of the repository")
    return root


def build_tools_problem() -> str | None:
    """Why this interpreter cannot build the wheel offline, or None."""
    missing = [name for name in ("pip", "setuptools") if importlib.util.find_spec(name) is None]
    if missing:
        return (f"--include-code builds the wheel offline and needs {' and '.join(missing)} in "
                f"{sys.executable}: `{sys.executable} -m pip install setuptools`")
    from importlib.metadata import version

    major_minor = tuple(int(p) for p in version("setuptools").split(".")[:2] if p.isdigit())
    if major_minor < (70, 1) and importlib.util.find_spec("wheel") is None:  # bdist_wheel is in setuptools from 70.1
        return (f"--include-code: setuptools {version('setuptools')} in {sys.executable} cannot build wheels "
                f"without the `wheel` package: `{sys.executable} -m pip install -U setuptools`")
    return None


def check_build_tools() -> None:
    problem = build_tools_problem()
    if problem:
        raise UserError(problem)


def build_wheel(dest: Path, project: Path | None = None, *, kernel_cache: bool = True,
                kernel_pythons: Sequence[str] = ()) -> Path:
    """Build the project's wheel into `dest`, with the kernels precompiled by the running Python and by each
    of `kernel_pythons` (other interpreters, for other targets) unless `kernel_cache` is false."""
    project = project or project_root()
    check_build_tools()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fastpack-wheel-") as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        _copy_sources(project, src)
        if kernel_cache:
            for i, python in enumerate(dict.fromkeys([sys.executable, *kernel_pythons])):
                made = build_kernel_cache(src, Path(tmp) / f"numba-{i}", python)
                shutil.copytree(made, src / "fastpack" / "kernel_cache", dirs_exist_ok=True)
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


def build_kernel_cache(src: Path, work: Path, python: str = sys.executable) -> Path:
    """Compile the default pack's kernels for the generic CPU with `python` (its numba), from the copied
    sources themselves (see fastpack.kernel_cache); return the folder holding the files. It is kept in
    the temp folder under a hash of the sources and versions: the next build of them copies it."""
    kept = Path(tempfile.gettempdir()) / "fastpack-kernel-cache" / _kernel_key(src / "fastpack", python)
    if kept.is_dir():
        return kept
    env = {**os.environ, "NUMBA_CPU_NAME": "generic", "NUMBA_CACHE_DIR": str(work / "cache"), "PYTHONPATH": str(src)}
    env.pop("NUMBA_CPU_FEATURES", None)
    env.pop("NUMBA_DISABLE_JIT", None)
    made = work / "made"
    result = subprocess.run([python, "-m", "fastpack.kernel_cache", str(made)], cwd=src, env=env, capture_output=True,
                            text=True)
    if result.returncode != 0:
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise UserError(f"compiling the kernels for the wheel with {python} failed (exit {result.returncode}): "
                        f"{tail}; it needs numpy and numba; or pass --no-kernel-cache to bundle without them")
    staging = None
    try:  # kept only to save the next build's time: any failure just skips it
        kept.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=kept.parent))
        shutil.copytree(made, staging, dirs_exist_ok=True)
        os.replace(staging, kept)
    except OSError:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return made


def _kernel_key(package: Path, python: str) -> str:
    """The sources, and the Python, numba and llvmlite the kernels are compiled with."""
    probe = "import sys, numba, llvmlite; print(sys.version, numba.__version__, llvmlite.__version__)"
    try:
        result = subprocess.run([python, "-c", probe], capture_output=True, text=True)
    except OSError as e:
        raise UserError(f"--kernel-python {python}: cannot run it ({e.strerror})") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or [""])[-1]
        raise UserError(f"--kernel-python {python}: cannot import numba there ({last})")
    h = hashlib.sha256(f"{Path(python).resolve()}|{result.stdout.strip()}".encode())
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:24]


def _copy_sources(project: Path, dst: Path) -> None:
    """Packaging files, README/LICENSE, and every top-level folder that is a Python package."""
    dst.mkdir(parents=True)
    for entry in sorted(project.iterdir()):
        if entry.is_file() and (entry.name in PACKAGING_FILES or entry.name.upper().startswith(DOC_PREFIXES)):
            shutil.copy2(entry, dst / entry.name)
        elif entry.is_dir() and (entry / "__init__.py").is_file():
            shutil.copytree(entry, dst / entry.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "kernel_cache"))


def installer_source() -> bytes:
    """code/install.py: bundle/install_script.py as it is (standard library only)."""
    return (Path(__file__).resolve().parent / "install_script.py").read_bytes()


def install_doc(wheel_name: str, deps=None) -> str:
    """`code/INSTALL.md`: the one line that installs the bundled wheel on Kaggle with internet off."""
    from bundle.install_script import INSTALL_LINE

    shipped = (f"This bundle carries wheels of {', '.join(deps.all_names())} in `code/wheels/`, made for Python "
               f"{deps.python_version} on {', '.join(deps.platforms)}; the line installs those that are missing."
               if deps is not None else
               "This bundle carries no dependency wheels (build it with `--include-deps` for that).")
    return f"""# Installing fastpack on Kaggle without internet

In a notebook with this dataset attached (Add Input), internet off, run in a cell:

```
!{INSTALL_LINE}
```

It works whichever way Kaggle mounted the dataset (`/kaggle/input/<slug>/`,
`/kaggle/input/datasets/<owner>/<slug>/`, or a zip upload one level further down): `find` reaches
a copy of `code/install.py`, which picks the bundle the runner will use (with several bundles
attached it stops and names them: pass `--dataset-root DIR` to both it and the runner) and installs
the wheel its manifest lists, `{wheel_name}`, with `pip install --no-index --no-deps
--force-reinstall`.

Then each runtime dependency ({", ".join(KAGGLE_PREINSTALLED)}) that is not installed is
installed from `code/wheels/` with `pip install --no-index --find-links`. {shipped} A dependency
that is neither installed nor bundled stops the line with its name and the bundle command that adds
it (`python -m bundle --include-code --include-deps NAME --python-version X.Y`, X.Y being the
notebook's `python --version`).

Then: `!python -m trainer.kaggle_entry --show-progress`.
"""
