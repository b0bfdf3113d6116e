"""Kernels compiled once, anywhere: a portable numba cache shipped in the wheel.

Compiling the JSONL scanner and the windowers takes 10-20 s, and every Kaggle session starts on a
fresh machine with an empty cache. So the wheel that `python -m bundle --include-code` builds
carries the compiled kernels of the default pack (`fastpack/kernel_cache/`, made by `build`), and
`seed` copies them, before the first call, to wherever numba looks for this install's cache
(`__pycache__` beside the sources, or under NUMBA_CACHE_DIR). Why the copy is found there:

- numba names cache files after the module, function, first line and Python version, never the
  install path, and stamps its index with a hash of the source file's bytes (numba >= 0.61; older
  ones stamp mtime and size, and then simply compile: the seeded files are ignored);
- the index is keyed on the CPU the code was made for, so the kernels are compiled for the generic
  x86-64 CPU (`NUMBA_CPU_NAME=generic`): `use_portable_cpu` asks for the same before numba is
  imported. On this project's kernels (byte scanning, memory copies) the generic code packs as fast
  as the host-tuned one; set NUMBA_CPU_NAME yourself to choose otherwise;
- numba and Python versions must match the build's; anything else misses and compiles as before.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Iterable

SHIPPED = Path(__file__).resolve().parent / "kernel_cache"
CPU_ENV = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")


def use_portable_cpu() -> None:
    """Compile for the generic CPU, so a cache made on one machine loads on another.

    Only before numba is imported (its codegen reads the setting once) and only when the user chose
    no CPU; a process that imported numba first keeps its own choice and compiles what it needs.
    """
    if "numba" not in sys.modules and not any(name in os.environ for name in CPU_ENV):
        os.environ["NUMBA_CPU_NAME"] = "generic"


def seed(dispatchers: Iterable) -> int:
    """Copy the shipped cache files of these dispatchers to numba's cache folder for them; files already
    there are kept. Returns how many files it copied (0 when nothing is shipped or caching is off)."""
    if not SHIPPED.is_dir():
        return 0
    copied = 0
    for dispatcher in dispatchers:
        cache = getattr(dispatcher, "_cache", None)
        folder, index = getattr(cache, "cache_path", None), getattr(getattr(cache, "_cache_file", None), "_index_name", None)
        if folder is None or index is None or not (SHIPPED / index).is_file() or (Path(folder) / index).exists():
            continue
        base = index[: -len(".nbi")]
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            for src in SHIPPED.glob(f"{base}.*"):
                shutil.copyfile(src, Path(folder) / src.name)
                copied += 1
        except OSError:
            continue  # a read-only install without NUMBA_CACHE_DIR: numba compiles (and cannot cache) as before
    return copied


def build(dest: Path) -> list[Path]:
    """Compile what the default pack calls (concat and document windows, int32 and uint16, JSONL and
    Arrow input) into a fresh cache and gather its files flat into `dest`. Run with
    NUMBA_CPU_NAME=generic and an empty NUMBA_CACHE_DIR (bundle.wheel does)."""
    from numba.core import config

    from fastpack.pack import warm_up
    from fastpack.spec import PackSpec

    if not config.CACHE_DIR or config.CPU_NAME != "generic":
        raise RuntimeError("build() needs NUMBA_CACHE_DIR set and NUMBA_CPU_NAME=generic")
    for mode in ("concat", "document"):
        for dtype in ("int32", "uint16"):
            warm_up(PackSpec.from_keywords(seq_len=1024, mode=mode, eos_id=0, pad_id=0, dtype=dtype), jsonl=True,
                    spread=True)
    dest.mkdir(parents=True, exist_ok=True)
    made = []
    for src in sorted(Path(config.CACHE_DIR).rglob("*")):
        if src.suffix in (".nbi", ".nbc") and src.name.startswith(("jsonscan.", "kernels.")):
            shutil.copyfile(src, dest / src.name)
            made.append(dest / src.name)
    return made


if __name__ == "__main__":  # python -m fastpack.kernel_cache DEST (bundle.wheel runs it)
    print(len(build(Path(sys.argv[1]))))
