"""verify: sizes (fast) or sha256 (full) against the manifest; missing, extra and changed files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fastpack.errors import UserError

import bundle
from bundle.layout import MANIFEST_NAME
from bundle.verify import check_bundle, verify_bundle


@pytest.fixture
def built(kit, root, tmp_path) -> Path:
    out = tmp_path / "kaggle_bundle"
    kit.build(root, out, include_reports=True, kaggle_id="alice/vi-novels", license="CC0-1.0")
    return out


@pytest.mark.parametrize("full", [False, True])
def test_a_fresh_bundle_verifies(built, full):
    report = verify_bundle(built, full=full)
    assert report.ok, report.lines()
    assert report.checked == 13  # dataset-metadata.json is for the Kaggle CLI, never extra
    assert report.bytes_checked == sum(p.stat().st_size for p in built.rglob("*") if p.is_file()
                                       and p.name not in (MANIFEST_NAME, "dataset-metadata.json"))


def test_flipped_byte_is_caught_by_full_only(built):
    path = built / "dataset/tokenized/val_tokens.jsonl"
    data = bytearray(path.read_bytes())
    data[5] ^= 0x01
    path.write_bytes(bytes(data))
    assert verify_bundle(built).ok  # same size: the fast check cannot see it
    report = verify_bundle(built, full=True)
    assert [(p.path, p.reason.split()[0]) for p in report.changed] == \
        [("dataset/tokenized/val_tokens.jsonl", "sha256")]
    assert not report.missing and not report.extra


def test_truncated_file_is_caught_by_size(built):
    path = built / "tokenizer/sp_model.model"
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[:-3])
    report = verify_bundle(built)
    assert [str(p) for p in report.changed] == \
        [f"tokenizer/sp_model.model (size {size - 3:,} bytes, manifest says {size:,})"]


def test_missing_and_extra_files_are_reported_together(built, kit):
    (built / "dataset/splits/test.jsonl").unlink()
    kit.write(built / "dataset/splits/sneaky.jsonl", "{}\n")
    kit.write(built / "notes.txt", "hi\n")
    report = verify_bundle(built, full=True)
    assert [p.path for p in report.missing] == ["dataset/splits/test.jsonl"]
    assert [p.path for p in report.extra] == ["dataset/splits/sneaky.jsonl", "notes.txt"]
    assert not report.changed and not report.ok
    assert report.lines()[-1].startswith("FAILED: 0 changed, 1 missing, 2 extra")


def test_check_bundle_raises_naming_the_bad_files(built):
    (built / "dataset/splits/val.jsonl").write_text("tampered\n")
    (built / "tokenizer/sp_model.vocab").unlink()
    with pytest.raises(UserError, match=r"dataset/splits/val.jsonl \(size .*tokenizer/sp_model.vocab"):
        check_bundle(built)
    assert check_bundle.__module__ == bundle.check_bundle.__module__


def test_recorded_missing_files_are_notes_not_failures(kit, root, tmp_path):
    (root / "reports/clean_noise_report.json").unlink()
    out = tmp_path / "b"
    kit.build(root, out, include_reports=True)
    report = check_bundle(out, full=True)
    assert [m.bundle_path for m in report.recorded_missing] == ["reports/clean_noise_report.json"]
    assert any("clean_noise_report.json" in line and line.startswith("note:") for line in report.lines())


def test_not_a_bundle(tmp_path):
    with pytest.raises(UserError, match="not a bundle"):
        verify_bundle(tmp_path)
    with pytest.raises(UserError, match="bundle folder not found"):
        verify_bundle(tmp_path / "nope")
    (tmp_path / "kaggle_bundle.zip").write_bytes(b"PK")
    with pytest.raises(UserError, match="extract a zip first"):
        verify_bundle(tmp_path / "kaggle_bundle.zip")


@pytest.mark.parametrize("bad", ["../outside.txt", "/etc/passwd", "a/../../b"])
def test_a_manifest_cannot_point_outside_the_bundle(built, bad):
    path = built / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    manifest["files"][0]["path"] = bad
    path.write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="unsafe path"):
        verify_bundle(built)


@pytest.mark.parametrize("edit, match", [
    (lambda m: m.update(format_version=99), "unsupported format_version 99"),
    (lambda m: m.update(kind="other"), "not a fastpack bundle manifest"),
    (lambda m: m["files"][0].pop("sha256"), "malformed manifest"),
])
def test_unreadable_manifests_are_user_errors(built, edit, match):
    path = built / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=match):
        verify_bundle(built)


def test_find_bundle_roots_sees_kaggle_mount_layouts(kit, root, tmp_path):
    inputs = tmp_path / "input"
    kit.build(root, inputs / "vi-novels")  # /kaggle/input/<slug>/
    kit.build(root, inputs / "datasets/alice/vi-novels-2/kaggle_bundle")  # newer mount, zip extracted a level down
    kit.write(inputs / "other-dataset/file.csv", "a,b\n")
    assert bundle.find_bundle_roots(inputs) == [inputs / "datasets/alice/vi-novels-2/kaggle_bundle",
                                                inputs / "vi-novels"]
    assert bundle.find_bundle_roots(inputs, max_depth=2) == [inputs / "vi-novels"]
    assert bundle.find_bundle_roots(inputs / "vi-novels") == [inputs / "vi-novels"]
    assert bundle.read_manifest(inputs / "vi-novels").files[0].path == "config/training_config.json"
