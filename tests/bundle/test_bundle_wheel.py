"""--include-code: a wheel of this project in code/, installable with `pip install --no-index`."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile

import pytest

from fastpack import __version__

from bundle.verify import verify_bundle

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("pip", "setuptools")),
    reason="needs pip and setuptools to build the wheel offline")


def test_include_code_bundles_an_installable_wheel(kit, root, tmp_path):
    out = tmp_path / "b"
    in_tree = [kit.PROJECT / "fastpack.egg-info", kit.PROJECT / "build"]
    existed = [p.exists() for p in in_tree]
    kit.build(root, out, include_code=True, zip=True)
    wheel = out / f"code/fastpack-{__version__}-py3-none-any.whl"
    assert wheel.is_file()
    manifest = json.loads((out / "bundle_manifest.json").read_text())
    code = {f["path"]: f for f in manifest["files"] if f["group"] == "code"}
    assert set(code) == {wheel.relative_to(out).as_posix(), "code/INSTALL.md"}
    assert all(f["origin"] == "built" and f["source"] is None for f in code.values())
    assert verify_bundle(out, full=True).ok
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        assert wheel.relative_to(out).as_posix() in zf.namelist()
    assert f"--no-index --no-deps /kaggle/input/*/code/{wheel.name}" in (out / "code/INSTALL.md").read_text()

    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
    assert {"bundle/__init__.py", "bundle/cli.py", "fastpack/__init__.py", "fastpack/config.py"} <= names
    assert not any("__pycache__" in n or n.startswith(("tests/", "build/")) for n in names)

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
    # The build ran in a temp copy: no build/ or egg-info appeared in the checkout.
    assert [p.exists() for p in in_tree] == existed
