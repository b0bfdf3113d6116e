"""The command line through subprocess on real files, the public API, the copy+hash pass."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys

import pytest

import bundle
from bundle.cli import main
from bundle.copy import copy_stream


def test_build_zip_then_verify_full_through_the_cli(kit, root, tmp_path):
    made = kit.run_cli("bundle", "--root", "data", "--include-reports", "--zip", "--kaggle-id", "alice/vi-novels",
                       "--license", "CC0-1.0", "--show-progress", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "bundled 13 file(s)" in made.stdout
    assert "upload: kaggle datasets create -p kaggle_bundle --dir-mode zip" in made.stdout
    assert "bundle:" in made.stderr  # the tqdm bar over bytes
    assert (tmp_path / "kaggle_bundle/bundle_manifest.json").is_file()
    assert (tmp_path / "kaggle_bundle.zip").is_file()

    checked = kit.run_cli("bundle", "verify", "kaggle_bundle", "--full", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines()[-1].startswith("OK: 13 file(s)")

    path = tmp_path / "kaggle_bundle/dataset/tokenized/train_tokens.jsonl"
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x20
    path.write_bytes(bytes(data))
    assert kit.run_cli("bundle", "verify", "kaggle_bundle", cwd=tmp_path).returncode == 0  # sizes only
    tampered = kit.run_cli("bundle", "verify", "kaggle_bundle", "--full", cwd=tmp_path)
    assert tampered.returncode == 2
    assert "changed: dataset/tokenized/train_tokens.jsonl (sha256" in tampered.stdout
    assert tampered.stderr.startswith("error: bundle kaggle_bundle does not match its manifest")
    assert "Traceback" not in tampered.stderr


def test_missing_required_files_exit_2_with_one_line_and_nothing_written(kit, root, tmp_path):
    (root / "dataset/splits/val.jsonl").unlink()
    (root / "tokenizer/tokenizer_info.json").unlink()
    done = kit.run_cli("bundle.prepare_kaggle_bundle", "--root", "data", "--zip", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "dataset/splits/val.jsonl" in done.stderr and "tokenizer/tokenizer_info.json" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_dry_run_through_the_cli(kit, root, tmp_path):
    done = kit.run_cli("bundle", "--root", str(root), "--out", str(tmp_path / "b"), "--dry-run",
                       "--include-preprocessed", cwd=root)
    assert done.returncode == 0, done.stderr
    assert "dataset/preprocessed/all_novels_preprocessed_clean.jsonl" in done.stdout
    assert "total: 11 file(s)" in done.stdout
    assert not (tmp_path / "b").exists()


def test_main_is_importable_and_maps_errors(kit, root, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["--root", "data", "--include-extra", "notes/a.md", "notes/sub/*.md"]) == 0
    assert "bundled 12 file(s)" in capsys.readouterr().out
    from bundle.cli import run

    assert run(["--root", "data", "--include-extra", "../x"]) == 2
    assert "outside the data root" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])


def test_import_and_help_stay_light(kit, tmp_path):
    code = ("import sys, bundle, bundle.cli, bundle.build, bundle.verify, bundle.zipper, bundle.kaggle_meta, "
            "bundle.wheel; print(sorted(m for m in ('numba', 'torch', 'numpy', 'tqdm') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(kit.PROJECT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    helped = kit.run_cli("bundle", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "--include-extra GLOB" in helped.stdout and "--dir-mode zip" in helped.stdout


def test_public_names_resolve():
    for name in bundle.__all__:
        assert getattr(bundle, name) is not None, name
    assert bundle.MANIFEST_NAME == "bundle_manifest.json"
    with pytest.raises(AttributeError):
        bundle.nope


class OnceReader(io.RawIOBase):
    """A stream that can be read once, front to back, and counts what was read."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = min(len(buf), len(self.data) - self.pos)
        buf[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n

    def seek(self, *args):
        raise AssertionError("copy_stream must not seek (one pass)")


def test_copy_and_hash_is_one_pass_over_chunks():
    data = os.urandom(3 * 1024 + 17)
    src, dst, seen = OnceReader(data), io.BytesIO(), []
    size, digest = copy_stream(src, dst, seen.append, chunk=1024)
    assert (size, digest) == (len(data), hashlib.sha256(data).hexdigest())
    assert dst.getvalue() == data
    assert seen == [1024, 1024, 1024, 17] and src.pos == len(data)


def test_manifest_bytes_are_deterministic(kit, root, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    kit.build(root, tmp_path / "one")
    kit.build(root, tmp_path / "two")
    one = (tmp_path / "one/bundle_manifest.json").read_bytes()
    assert one == (tmp_path / "two/bundle_manifest.json").read_bytes()
    assert one.endswith(b"}\n")
    keys = list(json.loads(one))
    assert keys == sorted(keys)
    manifest = bundle.read_manifest(tmp_path / "one")
    assert bundle.Manifest.from_dict(manifest.to_dict()).to_dict() == json.loads(one)
