"""Hand-made data roots: tiny files at every path of the bundle table, each with its own content."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastpack.config import Config, save_config

PROJECT = Path(__file__).resolve().parents[2]

REQUIRED = [
    "config/training_config.json",
    "tokenizer/sp_model.model",
    "tokenizer/sp_model.vocab",
    "tokenizer/tokenizer_info.json",
    "dataset/splits/train.jsonl",
    "dataset/splits/val.jsonl",
    "dataset/splits/test.jsonl",
    "dataset/tokenized/train_tokens.jsonl",
    "dataset/tokenized/val_tokens.jsonl",
    "dataset/tokenized/test_tokens.jsonl",
]
REPORTS = ["reports/preprocessing_summary.json", "reports/clean_noise_report.json", "reports/tokenize_summary.json"]
PREPROCESSED = "dataset/preprocessed/all_novels_preprocessed_clean.jsonl"
EXTRA = ["notes/a.md", "notes/sub/b.md"]


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def make_root(root: Path, config: Config | None = None) -> Path:
    """A data root with every table file, plus files no option should pick up."""
    save_config(config or Config(), root / "config/training_config.json")
    paths = (config or Config()).paths
    for rel in REQUIRED[1:]:
        src = rel.replace("tokenizer/", f"{paths.tokenizer_dir}/", 1).replace(
            "dataset/splits/", f"{paths.splits_dir}/", 1).replace("dataset/tokenized/", f"{paths.tokenized_dir}/", 1)
        write(root / src, f'{{"input_ids": [1, 2, 3], "file": "{rel}"}}\n' * 3)
    for rel in REPORTS:
        write(root / rel, f'{{"report": "{rel}"}}\n')
    write(root / "reports/notes.txt", "not a summary\n")
    write(root / PREPROCESSED, '{"text": "Chương 1. Ngày hôm ấy"}\n')
    for rel in EXTRA:
        write(root / rel, f"# {rel}\n")
    write(root / "dataset/raw/novel.txt", "raw text stays home\n")
    return root


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under folder: POSIX relative path -> bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(PROJECT), **(env or {})}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path / "data")


class Kit:
    """The helpers above, handed to tests as a fixture (conftest is not importable under importlib mode)."""

    PROJECT = PROJECT
    REQUIRED = REQUIRED
    REPORTS = REPORTS
    PREPROCESSED = PREPROCESSED
    EXTRA = EXTRA
    write = staticmethod(write)
    make_root = staticmethod(make_root)
    tree = staticmethod(tree)
    run_cli = staticmethod(run_cli)

    @staticmethod
    def build(root: Path, out: Path, **options):
        from bundle.build import BundleOptions, build_bundle

        lines: list[str] = []
        result = build_bundle(BundleOptions(root=root, out=out, **options), log=lines.append)
        result.notes.extend(lines)
        return result


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
