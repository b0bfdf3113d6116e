"""Building a bundle: every table row with and without the optional flags, missing files, refusals."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from fastpack.config import Config, PathsConfig, load_config
from fastpack.errors import UserError

from bundle.layout import BUNDLE_PATHS, MANIFEST_NAME


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under folder with its size and mtime: equal snapshots mean nothing was written."""
    return {p.relative_to(folder).as_posix(): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def test_bundle_paths_are_the_config_defaults():
    # A bundled config with default paths resolves, from the bundle root, to the bundled files.
    defaults = PathsConfig()
    assert {key: getattr(defaults, key) for key in BUNDLE_PATHS} == BUNDLE_PATHS


@pytest.mark.parametrize("reports", [False, True])
@pytest.mark.parametrize("preprocessed", [False, True])
@pytest.mark.parametrize("extra", [False, True])
def test_every_row_with_and_without_optional_flags(kit, root, tmp_path, reports, preprocessed, extra):
    out = tmp_path / "kaggle_bundle"
    kit.build(root, out, include_reports=reports, include_preprocessed=preprocessed,
              include_extra=("notes/**/*.md",) if extra else ())
    expected = set(kit.REQUIRED)
    expected |= set(kit.REPORTS) if reports else set()
    expected |= {kit.PREPROCESSED} if preprocessed else set()
    expected |= set(kit.EXTRA) if extra else set()
    got = kit.tree(out)
    assert set(got) == expected | {MANIFEST_NAME}
    # Byte-exact copies, and the sources that no option asks for stay home.
    for rel in expected:
        assert got[rel] == (root / rel).read_bytes(), rel
    assert not any(p.startswith("dataset/raw") or p == "reports/notes.txt" for p in got)
    manifest = json.loads(got[MANIFEST_NAME])
    assert [f["path"] for f in manifest["files"]] == sorted(expected)
    assert manifest["missing"] == []


def test_manifest_records_sizes_hashes_sources_totals_and_options(kit, root, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    kit.build(root, tmp_path / "b", include_reports=True, include_extra=("notes/a.md",))
    manifest = json.loads((tmp_path / "b" / MANIFEST_NAME).read_text())
    assert manifest["kind"] == "fastpack-bundle" and manifest["format_version"] == 1
    assert manifest["created"] == "2023-11-14T22:13:20Z"
    from fastpack import __version__

    assert manifest["fastpack_version"] == __version__
    for entry in manifest["files"]:
        data = (root / entry["source"]).read_bytes()
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["origin"] == "copy"
    by_path = {f["path"]: f for f in manifest["files"]}
    assert by_path["dataset/tokenized/train_tokens.jsonl"]["required"] is True
    assert by_path["dataset/tokenized/train_tokens.jsonl"]["group"] == "tokenized"
    assert by_path["reports/tokenize_summary.json"]["group"] == "reports"
    assert by_path["notes/a.md"] == {**by_path["notes/a.md"], "group": "extra", "required": False}
    assert manifest["totals"] == {"files": 14, "bytes": sum(f["size"] for f in manifest["files"]),
                                  "missing_required": 0, "missing_optional": 0}
    assert manifest["options"]["include_reports"] is True
    assert manifest["options"]["include_extra"] == ["notes/a.md"]
    assert "root" not in manifest["options"] and "out" not in manifest["options"]
    # Local folder names never reach the (often public) manifest.
    assert str(tmp_path) not in (tmp_path / "b" / MANIFEST_NAME).read_text()


def test_missing_required_files_are_listed_at_once_and_nothing_is_written(kit, root, tmp_path):
    for rel in ("tokenizer/sp_model.vocab", "dataset/splits/val.jsonl", "dataset/tokenized/test_tokens.jsonl"):
        (root / rel).unlink()
    before = snapshot(tmp_path)
    with pytest.raises(UserError, match="3 required file") as err:
        kit.build(root, tmp_path / "b", zip=True)
    for rel in ("tokenizer/sp_model.vocab", "dataset/splits/val.jsonl", "dataset/tokenized/test_tokens.jsonl"):
        assert rel in str(err.value)
    assert "--allow-missing" in str(err.value)
    assert snapshot(tmp_path) == before


def test_allow_missing_records_required_and_optional_in_the_manifest(kit, root, tmp_path):
    (root / "dataset/splits/test.jsonl").unlink()
    (root / "reports/clean_noise_report.json").unlink()
    (root / kit.PREPROCESSED).unlink()
    kit.build(root, tmp_path / "b", allow_missing=True, include_reports=True, include_preprocessed=True,
              include_extra=("nothing/*.bin",))
    manifest = json.loads((tmp_path / "b" / MANIFEST_NAME).read_text())
    missing = {m["path"]: (m["required"], m["group"], m["pattern"]) for m in manifest["missing"]}
    assert missing == {
        "dataset/splits/test.jsonl": (True, "splits", False),
        "reports/clean_noise_report.json": (False, "reports", False),
        kit.PREPROCESSED: (False, "preprocessed", False),
        "nothing/*.bin": (False, "extra", True),
    }
    assert manifest["totals"]["missing_required"] == 1 and manifest["totals"]["missing_optional"] == 3
    assert not (tmp_path / "b/dataset/splits/test.jsonl").exists()


def test_no_config_means_config_missing_and_default_source_paths(kit, root, tmp_path):
    (root / "config/training_config.json").unlink()
    with pytest.raises(UserError, match=r"1 required file.*config/training_config.json \(config\)"):
        kit.build(root, tmp_path / "b")


def test_custom_config_paths_are_read_and_the_bundled_config_points_at_the_bundle(kit, tmp_path):
    config = Config().replace("paths", tokenized_dir="work/tok", splits_dir="work/splits", tokenizer_dir="sp")
    data = kit.make_root(tmp_path / "data", config)
    out = tmp_path / "b"
    kit.build(data, out)
    assert (out / "dataset/tokenized/train_tokens.jsonl").read_bytes() == \
        (data / "work/tok/train_tokens.jsonl").read_bytes()
    bundled = load_config(out / "config/training_config.json")
    assert bundled.paths.tokenized_dir == "dataset/tokenized" and bundled.paths.tokenizer_dir == "tokenizer"
    assert bundled.paths.resolve(out, "tokenized_dir") == (out / "dataset/tokenized").resolve()
    assert bundled.replace("paths", **{k: getattr(config.paths, k) for k in BUNDLE_PATHS}) == config
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    entry = next(f for f in manifest["files"] if f["path"] == "config/training_config.json")
    assert entry["origin"] == "rewritten"
    assert entry["sha256"] == hashlib.sha256((out / "config/training_config.json").read_bytes()).hexdigest()
    by_path = {f["path"]: f["source"] for f in manifest["files"]}
    assert by_path["dataset/splits/val.jsonl"] == "work/splits/val.jsonl"


def test_invalid_config_is_a_user_error_naming_the_key(kit, root, tmp_path):
    (root / "config/training_config.json").write_text('{"paths": {"tokenised_dir": "x"}}')
    with pytest.raises(UserError, match="paths.tokenised_dir"):
        kit.build(root, tmp_path / "b")


@pytest.mark.parametrize("pattern", ["../secrets/*", "/etc/passwd", "notes/../../secrets/*", ""])
def test_patterns_reaching_outside_the_root_are_refused(kit, root, tmp_path, pattern):
    kit.write(tmp_path / "secrets/key.txt", "secret")
    before = snapshot(tmp_path)
    with pytest.raises(UserError, match="outside the data root"):
        kit.build(root, tmp_path / "b", include_extra=(pattern,))
    assert snapshot(tmp_path) == before


def test_symlinks_reaching_outside_the_root_are_refused(kit, root, tmp_path):
    secret = kit.write(tmp_path / "secrets/key.txt", "secret")
    os.symlink(secret, root / "notes/key.md")
    os.symlink(secret.parent, root / "notes/linked_dir")
    with pytest.raises(UserError, match="outside the data root") as err:
        kit.build(root, tmp_path / "b", include_extra=("notes/*",))
    assert "notes/key.md" in str(err.value) and "notes/linked_dir" in str(err.value)
    assert "symlink" in str(err.value)
    assert not (tmp_path / "b").exists()


def test_a_table_file_symlinked_outside_is_refused_but_inside_is_fine(kit, root, tmp_path):
    tokens = root / "dataset/tokenized/val_tokens.jsonl"
    inside = root / "elsewhere/val_tokens.jsonl"
    inside.parent.mkdir()
    os.replace(tokens, inside)
    os.symlink(inside, tokens)
    kit.build(root, tmp_path / "ok")
    assert (tmp_path / "ok/dataset/tokenized/val_tokens.jsonl").read_bytes() == inside.read_bytes()
    assert not (tmp_path / "ok/dataset/tokenized/val_tokens.jsonl").is_symlink()

    outside = tmp_path / "big_disk/val_tokens.jsonl"
    outside.parent.mkdir()
    os.replace(inside, outside)
    tokens.unlink()
    os.symlink(outside, tokens)
    with pytest.raises(UserError, match=r"dataset/tokenized/val_tokens.jsonl \(resolves to a symlink to"):
        kit.build(root, tmp_path / "b")


def test_config_paths_outside_the_root_are_refused(kit, root, tmp_path):
    kit.write(tmp_path / "elsewhere/sp_model.model", "x")
    (root / "config/training_config.json").write_text(json.dumps({"paths": {"tokenizer_dir": "../elsewhere"}}))
    with pytest.raises(UserError, match=r"\.\./elsewhere/sp_model.model"):
        kit.build(root, tmp_path / "b")


def test_extra_cannot_shadow_the_manifest(kit, root, tmp_path):
    kit.write(root / MANIFEST_NAME, "{}")
    with pytest.raises(UserError, match="reserved name"):
        kit.build(root, tmp_path / "b", include_extra=("*.json",))


def test_extra_skips_the_bundle_inside_the_root(kit, root):
    out = root / "kaggle_bundle"
    kit.build(root, out, zip=True, include_extra=("notes/*.md",))
    kit.build(root, out, zip=True, include_extra=("**/*.md", "*.zip"))  # would match the old bundle and zip
    assert sorted(p for p in kit.tree(out) if p.endswith(".md")) == ["notes/a.md", "notes/sub/b.md"]
    assert not any(p.endswith(".zip") for p in kit.tree(out))


def test_dry_run_prints_the_plan_and_writes_nothing(kit, root, tmp_path):
    (root / "reports/clean_noise_report.json").unlink()
    before = snapshot(tmp_path)
    result = kit.build(root, tmp_path / "b", dry_run=True, zip=True, include_reports=True,
                       kaggle_id="alice/vi-novels", license="CC0-1.0")
    assert snapshot(tmp_path) == before
    text = "\n".join(result.notes)
    size = (root / "dataset/tokenized/train_tokens.jsonl").stat().st_size
    assert f"{size:>14,}  dataset/tokenized/train_tokens.jsonl" in text
    assert "MISSING  reports/clean_noise_report.json" in text and "optional" in text
    assert "nothing written" in text
    assert result.manifest is None


def test_dry_run_with_missing_required_files_fails_after_printing(kit, root, tmp_path):
    (root / "dataset/splits/train.jsonl").unlink()
    with pytest.raises(UserError, match="dataset/splits/train.jsonl"):
        kit.build(root, tmp_path / "b", dry_run=True)
    assert not (tmp_path / "b").exists()


def test_rebuild_replaces_the_previous_bundle(kit, root, tmp_path):
    out = tmp_path / "b"
    kit.build(root, out, include_reports=True)
    assert (out / "reports/tokenize_summary.json").exists()
    (root / "dataset/splits/val.jsonl").write_text("new content\n")
    kit.build(root, out)
    assert not (out / "reports").exists()
    assert (out / "dataset/splits/val.jsonl").read_text() == "new content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "data"]  # no temp or old folder left


def test_rebuild_without_zip_drops_the_stale_zip(kit, root, tmp_path):
    kit.build(root, tmp_path / "b", zip=True)
    assert (tmp_path / "b.zip").exists()
    result = kit.build(root, tmp_path / "b")
    assert not (tmp_path / "b.zip").exists()
    assert any("b.zip" in note for note in result.notes)


def test_refuses_a_non_empty_folder_that_is_not_a_bundle(kit, root, tmp_path):
    out = kit.write(tmp_path / "mine/thesis.tex", "precious").parent
    with pytest.raises(UserError, match="not empty and is not a bundle"):
        kit.build(root, out)
    assert kit.tree(out) == {"thesis.tex": b"precious"}
    kit.build(root, tmp_path / "empty_is_fine")
    (tmp_path / "empty").mkdir()
    kit.build(root, tmp_path / "empty")
    assert (tmp_path / "empty" / MANIFEST_NAME).is_file()


@pytest.mark.parametrize("out", [".", ".."])
def test_refuses_to_replace_the_data_root(kit, root, out):
    with pytest.raises(UserError, match="would replace the data root"):
        kit.build(root, root / out)


def test_failed_build_keeps_the_previous_bundle(kit, root, tmp_path, monkeypatch):
    out = tmp_path / "b"
    kit.build(root, out)
    before = kit.tree(out)
    (root / "dataset/splits/val.jsonl").write_text("changed\n")
    import bundle.build as build

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(build, "write_zip", boom)
    with pytest.raises(OSError, match="disk full"):
        kit.build(root, out, zip=True)
    assert kit.tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "data"]


def test_data_root_must_exist(kit, tmp_path):
    with pytest.raises(UserError, match="data root not found"):
        kit.build(tmp_path / "nope", tmp_path / "b")
