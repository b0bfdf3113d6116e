import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # kaggle_helpers.py

from kaggle_helpers import run, skip_without_torch  # noqa: E402


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    """A small generated corpus, prepared (split, tokenizer, tokenized)."""
    base = tmp_path_factory.mktemp("made")
    for args in (("sample", "--out", base / "raw", "--size-mb", "0.3"),
                 ("all", "--raw", base / "raw", "--root", base / "data", "--vocab-size", "1000")):
        proc = run("fastpack.corpus", *args)
        assert proc.returncode == 0, proc.stderr
    return base / "data"


@pytest.fixture(scope="session")
def bundle_zip(data_root):
    """A bundle of the small corpus, zipped as it is uploaded."""
    proc = run("bundle", "--root", data_root, "--out", data_root.parent / "kaggle_bundle", "--zip")
    assert proc.returncode == 0, proc.stderr
    return data_root.parent / "kaggle_bundle.zip"


@pytest.fixture(scope="session")
def code_bundle_zip(data_root):
    """The same bundle with the project's wheel and code/install.py (`--include-code`), zipped."""
    proc = run("bundle", "--root", data_root, "--out", data_root.parent / "code_bundle", "--zip", "--include-code")
    assert proc.returncode == 0, proc.stderr
    return data_root.parent / "code_bundle.zip"


@pytest.fixture
def kaggle(tmp_path, bundle_zip):
    """A fresh /kaggle stand-in: input/datasets/<owner>/<slug>/ holds the unzipped bundle."""
    skip_without_torch()
    input_root = tmp_path / "input"
    dataset = input_root / "datasets" / "someone" / "vi-novels"
    dataset.mkdir(parents=True)
    with zipfile.ZipFile(bundle_zip) as zf:
        zf.extractall(dataset)
    return input_root, dataset, tmp_path / "working"
