"""--include-code: a wheel of this project in code/, installable with `pip install --no-index`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from fastpack import __version__

from bundle.install_script import INSTALL_LINE
from bundle.wheel import build_tools_problem
from bundle.verify import verify_bundle

pytestmark = pytest.mark.skipif(build_tools_problem() is not None, reason=str(build_tools_problem()))


def test_include_code_bundles_an_installable_wheel(kit, root, tmp_path):
    out = tmp_path / "b"
    in_tree = [kit.PROJECT / "fastpack.egg-info", kit.PROJECT / "build"]
    existed = [p.exists() for p in in_tree]
    kit.build(root, out, include_code=True, zip=True)
    wheel = out / f"code/fastpack-{__version__}-py3-none-any.whl"
    assert wheel.is_file()
    manifest = json.loads((out / "bundle_manifest.json").read_text())
    code = {f["path"]: f for f in manifest["files"] if f["group"] == "code"}
    assert set(code) == {wheel.relative_to(out).as_posix(), "code/INSTALL.md", "code/install.py"}
    assert manifest["options"]["deps_target"] is None and manifest["options"]["kernel_cache"] is True
    assert all(f["origin"] == "built" and f["source"] is None for f in code.values())
    assert verify_bundle(out, full=True).ok
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        assert wheel.relative_to(out).as_posix() in zf.namelist()
    doc = (out / "code/INSTALL.md").read_text()
    assert f"!{INSTALL_LINE}\n" in doc and wheel.name in doc
    assert (out / "code/install.py").read_bytes() == (kit.PROJECT / "bundle/install_script.py").read_bytes()

    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
    assert {"bundle/__init__.py", "bundle/cli.py", "fastpack/__init__.py", "fastpack/config.py"} <= names
    assert not any("__pycache__" in n or n.startswith(("tests/", "build/")) for n in names)
    shipped = {n.split("/")[-1].split("-")[0] for n in names if n.startswith("fastpack/kernel_cache/")}
    assert {"jsonscan.scan_block", "jsonscan.split_points", "kernels._fill_segments"} <= shipped

    # What a notebook with internet off does: install from the file alone, then import from it.
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet",
                          "--disable-pip-version-check", "--target", str(target), str(wheel)],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    imported = subprocess.run([sys.executable, "-c", "import bundle, fastpack; print(bundle.__file__, "
                               "fastpack.__version__)"], cwd=tmp_path, env={"PYTHONPATH": str(target)},
                              capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == [str(target / "bundle/__init__.py"), __version__]
    # Installed at a new path with an empty numba cache, the first pack compiles nothing: the wheel's kernels load.
    src = tmp_path / "tokens.jsonl"
    src.write_text("".join(f'{{"input_ids": [{i}, {i + 1}, {i + 2}]}}\n' for i in range(100)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "PYTHON"))}
    packed = subprocess.run([sys.executable, "-m", "fastpack", "--input", str(src), "--output", str(tmp_path / "p.npy"),
                             "--seq-len", "8", "--eos-id", "0"], cwd=tmp_path, capture_output=True, text=True,
                            env=env | {"PYTHONPATH": str(target), "NUMBA_CACHE_DIR": str(tmp_path / "empty-cache")})
    assert packed.returncode == 0, packed.stderr
    assert "loading kernels" in packed.stdout and "compiling" not in packed.stdout, packed.stdout
    # The build ran in a temp copy: no build/ or egg-info appeared in the checkout.
    assert [p.exists() for p in in_tree] == existed


def tiny_wheel(folder, name, version="1.0", tag="py3-none-any"):
    """A minimal valid wheel (one module, METADATA, WHEEL, RECORD) built by hand: no network, no build backend."""
    stem = f"{name}-{version}"
    files = {f"{name}.py": f"VERSION = {version!r}\n",
             f"{stem}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{stem}.dist-info/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n"}
    files[f"{stem}.dist-info/RECORD"] = "".join(f"{n},,\n" for n in files) + f"{stem}.dist-info/RECORD,,\n"
    path = folder / f"{stem}-{tag}.whl"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for n, text in files.items():
            zf.writestr(n, text)
    return path


def test_include_deps_downloads_for_the_named_target_and_records_it(root, tmp_path):
    house = tmp_path / "house"
    tiny_wheel(house, "depone")
    tiny_wheel(house, "deptwo", tag="cp312-cp312-manylinux2014_x86_64")
    tiny_wheel(house, "deptwo", version="2.0", tag="cp313-cp313-manylinux2014_x86_64")
    out = tmp_path / "b"
    cli = [sys.executable, "-m", "bundle", "--root", str(root), "--out", str(out), "--include-deps", "depone,deptwo", "--no-kernel-cache",
           "--python-version", "3.12", "--platform", "manylinux2014_x86_64", "--deps-find-links", str(house)]
    done = subprocess.run(cli, capture_output=True, text=True, cwd=tmp_path, env=dict(os.environ, PIP_CONFIG_FILE=os.devnull))
    assert done.returncode == 0, done.stderr
    wheels = sorted(p.name for p in (out / "code/wheels").iterdir())
    assert wheels == ["depone-1.0-py3-none-any.whl", "deptwo-1.0-cp312-cp312-manylinux2014_x86_64.whl"]
    manifest = json.loads((out / "bundle_manifest.json").read_text())
    assert manifest["options"]["include_code"] is True  # implied: the wheels are installed by code/install.py
    assert manifest["options"]["kernel_cache"] is False
    assert manifest["options"]["deps_target"] == {"names": ["depone", "deptwo"], "python_version": "3.12",
                                                  "platforms": ["manylinux2014_x86_64"], "implementation": "cp"}
    assert {f"code/wheels/{w}" for w in wheels} <= {f["path"] for f in manifest["files"]}
    assert "depone, deptwo" in (out / "code/INSTALL.md").read_text()
    # A name with no wheel for the target: one line naming the target, nothing half-written.
    again = subprocess.run(cli[:-4] + ["--python-version", "3.11", "--deps-find-links", str(house)], capture_output=True,
                           text=True, cwd=tmp_path, env=dict(os.environ, PIP_CONFIG_FILE=os.devnull))
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert ("--include-deps: pip download for Python 3.11 on manylinux2014_x86_64, manylinux_2_28_x86_64 failed"
            in again.stderr and "deptwo" in again.stderr)
    assert sorted(p.name for p in (out / "code/wheels").iterdir()) == wheels  # the previous bundle stays


def test_kernel_python_that_cannot_compile_is_one_line(root, tmp_path):
    cli = [sys.executable, "-m", "bundle", "--root", str(root), "--out", str(tmp_path / "b"), "--include-code"]
    python = tmp_path / "no-python"
    done = subprocess.run(cli + ["--kernel-python", str(python)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"--kernel-python {python}: cannot run it" in done.stderr
    assert not (tmp_path / "b").exists()
