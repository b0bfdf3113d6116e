"""`code/install.py` in a bundle: install fastpack from the bundle the Kaggle runner will use, offline.

The one documented line (README, code/INSTALL.md, examples/kaggle_notebook.ipynb) is

    python "$(find /kaggle/input -maxdepth 6 -path '*/code/install.py' -print -quit)" /kaggle/input

`find` reaches this file in every layout Kaggle mounts (`/kaggle/input/<slug>/`,
`/kaggle/input/datasets/<owner>/<slug>/`, a zip upload one level further down). Whichever copy it
finds, this script then looks for bundles the way the runner does (folders with
bundle_manifest.json, 4 levels under the input root) and installs from the one the runner will
use: the only one, or the one named with `--dataset-root` (the runner needs the same flag then).

It installs the wheel the manifest names (`pip install --no-index --no-deps --force-reinstall`:
this bundle's code even when the same version is installed), then each runtime dependency that
is not installed, from the bundle's `code/wheels/` (`--no-index --find-links`; made by `python -m
bundle --include-code --include-deps`). Standard library only: fastpack is not installed yet.
Exit code 2 with one line saying what to do on any problem.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

INSTALL_LINE = """python "$(find /kaggle/input -maxdepth 6 -path '*/code/install.py' -print -quit)" /kaggle/input"""
MANIFEST_NAME = "bundle_manifest.json"
DEPS_DIR = "code/wheels"
SEARCH_DEPTH = 4  # bundle.manifest.find_bundle_roots (the runner's search) calls this module's


class InstallError(Exception):
    """A problem the user fixes; printed as one line, exit code 2."""


def find_bundle_roots(search_root: Path, max_depth: int = SEARCH_DEPTH) -> list[Path]:
    """Folders under `search_root` (itself included) holding a manifest; a found bundle is not searched."""
    found, level = [], [search_root] if search_root.is_dir() else []
    for _ in range(max_depth + 1):
        below = []
        for folder in level:
            if (folder / MANIFEST_NAME).is_file():
                found.append(folder)
                continue
            try:
                below += sorted(p for p in folder.iterdir() if p.is_dir())
            except OSError:
                continue
        level = below
    return sorted(found)


def choose_bundle(input_root: Path | None, dataset_root: Path | None) -> Path:
    """The bundle the runner would use with the same arguments."""
    here = dataset_root or input_root or Path(__file__).resolve().parent.parent
    found = find_bundle_roots(here)
    if not found:
        raise InstallError(f"no {MANIFEST_NAME} under {here}: attach the dataset made by `python -m bundle "
                           "--include-code`, or pass --dataset-root")
    if len(found) > 1:
        first = found[0]
        raise InstallError(f"{len(found)} bundles under {here}: {', '.join(map(str, found))}; pick one for both "
                           f"steps: python {first / 'code' / 'install.py'} --dataset-root {first}, then python -m "
                           f"trainer.kaggle_entry --dataset-root {first}")
    return found[0]


def read_manifest(bundle: Path) -> dict:
    """The bundle's manifest, parsed once for everything the install needs from it."""
    try:
        manifest = json.loads((bundle / MANIFEST_NAME).read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise TypeError(f"a JSON {type(manifest).__name__}, not an object")
        return manifest
    except (OSError, ValueError, TypeError) as e:
        raise InstallError(f"{bundle / MANIFEST_NAME}: not a readable bundle manifest ({e})") from None


def bundle_wheel(bundle: Path, manifest: dict) -> Path:
    """The fastpack wheel this bundle's manifest lists (not whatever sorts last in the folder)."""
    try:
        paths = [f["path"] for f in manifest.get("files", [])]
    except (TypeError, KeyError) as e:
        raise InstallError(f"{bundle / MANIFEST_NAME}: not a readable bundle manifest ({e})") from None
    wheels = [p for p in paths if re.fullmatch(r"code/fastpack-[^/]+\.whl", p)]
    if len(wheels) != 1:
        raise InstallError(f"{bundle}: its manifest lists {len(wheels)} fastpack wheels in code/, expected one: "
                           "rebuild the bundle with `python -m bundle --include-code`")
    wheel = bundle / wheels[0]
    if not wheel.is_file():
        raise InstallError(f"{wheel}: listed in the manifest but missing; upload the whole bundle folder")
    return wheel


def requirements(wheel: Path) -> list[str]:
    """The distribution names of the wheel's runtime dependencies (Requires-Dist without extras)."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(name).decode("utf-8")
    names = []
    for line in text.splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            names.append(re.match(r"[A-Za-z0-9._-]+", line.split(":", 1)[1].strip()).group(0))
    return names


def missing(names: list[str]) -> list[str]:
    out = []
    for name in names:
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            out.append(name)
    return out


def _normalize(name: str) -> str:
    """A distribution name as wheel file names and pip compare it (PEP 503)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--disable-pip-version-check", *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = " | ".join(line for line in (result.stderr or result.stdout).strip().splitlines()[-2:])
        raise InstallError(f"pip install {' '.join(args)} failed (exit {result.returncode}): {tail}")


def install(bundle: Path) -> list[str]:
    """Install the bundle's wheel, then its missing dependencies from code/wheels; return what it did."""
    manifest = read_manifest(bundle)
    wheel = bundle_wheel(bundle, manifest)
    pip("--no-deps", "--force-reinstall", "-q", str(wheel))
    done = [f"installed {wheel.name} from {bundle}"]
    needed = missing(requirements(wheel))
    deps = bundle / DEPS_DIR
    bundled = {_normalize(w.name.split("-")[0]) for w in deps.glob("*.whl")} if deps.is_dir() else set()
    here = [name for name in needed if _normalize(name) in bundled]
    if here:  # only what the bundle has: one absent name would make pip refuse them all
        pip("--find-links", str(deps), "-q", *here)
        done.append(f"installed {', '.join(here)} (and what they need) from {deps}")
    still = missing(needed)
    if still:
        target = _deps_target(manifest)
        raise InstallError(f"not installed and not in the bundle: {', '.join(still)}; rebuild the bundle with "
                           f"`python -m bundle --include-code --include-deps {' '.join(still)} --python-version "
                           f"{sys.version_info[0]}.{sys.version_info[1]}`" + (f" (its wheels are for {target})" if target else ""))
    if not needed:
        done.append("dependencies: all already installed")
    return done


def _deps_target(manifest: dict) -> str:
    try:
        target = manifest.get("options", {}).get("deps_target") or {}
        return f"Python {target['python_version']} on {', '.join(target['platforms'])}" if target else ""
    except (AttributeError, KeyError, TypeError):
        return ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="install.py", description="Install fastpack offline from an attached bundle.")
    p.add_argument("input_root", nargs="?", type=Path,
                   help="where datasets are mounted (/kaggle/input); default: this script's own bundle")
    p.add_argument("--dataset-root", type=Path, help="the bundle to install from when several are attached")
    args = p.parse_args(argv)
    try:
        for line in install(choose_bundle(args.input_root, args.dataset_root)):
            print(line, flush=True)
    except InstallError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
