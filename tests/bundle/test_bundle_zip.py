"""The zip: round-trips to the folder's files, byte-identical across builds, ZIP64 when needed."""
from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import pytest

import bundle.zipper as zipper
from bundle.layout import MANIFEST_NAME
from bundle.verify import verify_bundle


def test_zip_extracts_to_the_bundle_root_with_identical_files(kit, root, tmp_path):
    out = tmp_path / "kaggle_bundle"
    kit.build(root, out, zip=True, include_reports=True, kaggle_id="alice/vi-novels", license="CC0-1.0")
    with zipfile.ZipFile(tmp_path / "kaggle_bundle.zip") as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "extracted")
    assert names == sorted(names)
    assert all(not n.endswith("/") and not n.startswith("kaggle_bundle") for n in names)
    folder = kit.tree(out)
    folder.pop("dataset-metadata.json")  # for the Kaggle CLI only
    assert kit.tree(tmp_path / "extracted") == folder
    assert verify_bundle(tmp_path / "extracted", full=True).ok


def test_zip_entries_have_fixed_timestamps_and_modes(kit, root, tmp_path):
    kit.build(root, tmp_path / "b", zip=True)
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        infos = zf.infolist()
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}


def test_two_builds_give_byte_identical_zips(kit, root, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    kit.build(root, tmp_path / "one", zip=True, include_reports=True)
    for p in root.rglob("*"):  # new mtimes must not matter
        p.touch()
    kit.build(root, tmp_path / "two", zip=True, include_reports=True)
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()


def test_without_a_pinned_time_only_the_manifest_created_field_differs(kit, root, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    kit.build(root, tmp_path / "one", zip=True)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1800000000")
    kit.build(root, tmp_path / "two", zip=True)
    with zipfile.ZipFile(tmp_path / "one.zip") as a, zipfile.ZipFile(tmp_path / "two.zip") as b:
        assert a.namelist() == b.namelist()
        differ = [n for n in a.namelist() if a.read(n) != b.read(n)]
        assert differ == [MANIFEST_NAME]
        ma, mb = json.loads(a.read(MANIFEST_NAME)), json.loads(b.read(MANIFEST_NAME))
    assert ma["created"] != mb["created"]
    assert {**ma, "created": None} == {**mb, "created": None}


def test_zip64_is_used_for_large_entries(tmp_path, monkeypatch, kit):
    # A real >4 GiB file is too slow for a unit test: lower the threshold so a small file takes the ZIP64 path.
    kit.write(tmp_path / "src/big.bin", bytes(range(256)) * 64)
    kit.write(tmp_path / "src/small.txt", "small")
    monkeypatch.setattr(zipper, "ZIP64_LIMIT", 10_000)
    dest = tmp_path / "x.zip"
    zipper.write_zip(tmp_path / "src", dest, ["small.txt", "big.bin"])
    raw = dest.read_bytes()
    with zipfile.ZipFile(dest) as zf:
        headers = {i.filename: i.header_offset for i in zf.infolist()}
        assert zf.read("big.bin") == (tmp_path / "src/big.bin").read_bytes()
        assert zf.testzip() is None

    def local_extra_ids(offset: int) -> list[int]:
        name_len, extra_len = struct.unpack("<HH", raw[offset + 26: offset + 30])
        extra = raw[offset + 30 + name_len: offset + 30 + name_len + extra_len]
        return [struct.unpack("<H", extra[i:i + 2])[0] for i in range(0, len(extra), 4) if len(extra) >= i + 4][:1]

    assert local_extra_ids(headers["big.bin"]) == [0x0001]  # the ZIP64 extra field
    assert local_extra_ids(headers["small.txt"]) == []


@pytest.mark.parametrize("name", ["kaggle_bundle", "my.bundle"])
def test_zip_sits_beside_the_folder(name):
    assert zipper.zip_path_for(Path("/x") / name) == Path(f"/x/{name}.zip")
