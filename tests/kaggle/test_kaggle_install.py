"""The documented install line as a Kaggle user runs it: every mount layout the runner accepts
(read-only), a fresh virtualenv, `pip --no-index` (no network), then the runner from that virtualenv.

The fresh virtualenv sees the dependencies already installed for this test run through a .pth
file naming this interpreter's site-packages (what Kaggle's image is to a notebook); fastpack
itself it gets only from the bundle's wheel.
"""
import json
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from kaggle_helpers import FAST, skip_without_torch

from fastpack import __version__

from bundle.install_script import INSTALL_LINE
from bundle.wheel import build_tools_problem

PROJECT = Path(__file__).resolve().parents[2]
LAYOUTS = {  # where the bundle's files land under /kaggle/input
    "new": "datasets/someone/vi-novels",
    "old": "vi-novels",
    "zip one level down": "datasets/someone/vi-novels-zip/kaggle_bundle",
}

pytestmark = pytest.mark.skipif(build_tools_problem() is not None, reason=str(build_tools_problem()))


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh virtualenv (no fastpack) whose interpreter also sees this run's installed dependencies."""
    skip_without_torch()  # the install line stops on a missing dependency, and the runner trains
    path = tmp_path_factory.mktemp("venv") / "kaggle-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "image-packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return path


def user_env(venv: Path) -> dict:
    """A notebook's environment: the venv's python first on PATH, no checkout on sys.path, no pip config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    return env | {"PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "PIP_CONFIG_FILE": os.devnull,
                  "PYTHONUNBUFFERED": "1"}


def mount(zip_path: Path, input_root: Path, rel: str) -> Path:
    dataset = input_root / rel
    dataset.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dataset)
    return dataset


def read_only(root: Path) -> None:
    for p in sorted(root.rglob("*"), reverse=True):
        p.chmod(0o555 if p.is_dir() else 0o444)
    root.chmod(0o555)


@pytest.fixture
def restore_permissions(tmp_path):
    yield
    for p in [tmp_path, *tmp_path.rglob("*")]:
        if not p.is_symlink():
            p.chmod(0o755)


def install(venv: Path, input_root: Path, cwd: Path) -> subprocess.CompletedProcess:
    """The documented line, run by a shell as a notebook's `!` does, with /kaggle/input at input_root."""
    line = INSTALL_LINE.replace("/kaggle/input", str(input_root))
    return subprocess.run(["sh", "-c", line], capture_output=True, text=True, cwd=cwd, env=user_env(venv), timeout=300)


def in_venv(venv: Path, *args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "python"), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=user_env(venv), timeout=600)


def test_the_same_line_is_documented_everywhere():
    notebook = json.loads((PROJECT / "examples/kaggle_notebook.ipynb").read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    assert cells[0].splitlines()[-1] == f"!{INSTALL_LINE}"  # the first code cell installs
    assert f"!{INSTALL_LINE}\n" in (PROJECT / "README.md").read_text(encoding="utf-8")
    assert not any("git+" in c or "YOUR_NAME" in c for c in cells)
    kaggle = notebook["metadata"]["kaggle"]
    assert kaggle["accelerator"] == "nvidiaTeslaT4" and kaggle["isInternetEnabled"] is False


@pytest.mark.parametrize("layout", LAYOUTS)
def test_install_line_then_runner_in_every_layout(layout, venv, code_bundle_zip, tmp_path, restore_permissions):
    input_root = tmp_path / "input"
    dataset = mount(code_bundle_zip, input_root, LAYOUTS[layout])
    wheel_name = next(p.name for p in (dataset / "code").glob("fastpack-*.whl"))
    read_only(input_root)
    done = install(venv, input_root, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"installed {wheel_name} from {dataset}" in done.stdout
    where = in_venv(venv, "-c", "import fastpack, trainer, bundle; print(fastpack.__version__, trainer.__file__)",
                    cwd=tmp_path)
    version, trainer_file = where.stdout.split()
    assert version == __version__ and Path(trainer_file).is_relative_to(venv), where.stderr
    train = ["--max-steps", 2] if layout == "new" else ["--skip-train"]
    run = in_venv(venv, "-m", "trainer.kaggle_entry", "--input-root", input_root, "--work-dir", tmp_path / "work",
                  *FAST, *train, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"bundle: {dataset}" in run.stdout and "train: " in run.stdout
    # The wheel's precompiled kernels load at this new install path: the first pack compiles nothing.
    assert "loading kernels" in run.stdout and "compiling kernels" not in run.stdout, run.stdout
    if layout == "new":
        summary = json.loads((tmp_path / "work/model_output/summary.json").read_text())
        assert summary["step"] == 2 and summary["status"] == "completed"


def test_two_bundles_are_named_and_the_chosen_ones_wheel_is_installed(venv, code_bundle_zip, tmp_path,
                                                                      restore_permissions):
    input_root = tmp_path / "input"
    first = mount(code_bundle_zip, input_root, LAYOUTS["new"])
    second = mount(code_bundle_zip, input_root, LAYOUTS["old"])
    # A stale wheel beside the right one sorts last; the manifest names the one to install.
    (second / "code" / "fastpack-99.0-py3-none-any.whl").write_bytes(b"not the bundle's wheel")
    read_only(input_root)
    refused = install(venv, input_root, tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"2 bundles under {input_root}: {first}, {second}" in refused.stderr
    assert f"--dataset-root {first}" in refused.stderr
    chosen = in_venv(venv, first / "code" / "install.py", "--dataset-root", second, cwd=tmp_path)
    assert chosen.returncode == 0, chosen.stderr
    assert f"installed fastpack-{__version__}-py3-none-any.whl from {second}" in chosen.stdout
    version = in_venv(venv, "-c", "import fastpack; print(fastpack.__version__)", cwd=tmp_path)
    assert version.stdout.strip() == __version__
