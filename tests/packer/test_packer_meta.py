"""The packed meta is one typed class: what the packer writes is what PackMeta reads back."""
import json

import pytest

from fastpack import pack_sequences
from fastpack.errors import UserError
from fastpack.meta import FORMAT_VERSION, PackMeta


def test_written_meta_reads_back_typed_and_round_trips(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"input_ids": list(range(1, 2 + i % 7))}) + "\n" for i in range(40)))
    pack_sequences(src, tmp_path / "out.npy", seq_len=8, stride=5, eos_id=0, pad_id=99, pad_last=True)
    raw = json.loads((tmp_path / "out.meta.json").read_text())
    meta = PackMeta.read(tmp_path / "out.meta.json")
    assert meta.to_json() == raw
    assert (meta.seq_len, meta.stride, meta.mode, meta.eos_id, meta.pad_id) == (8, 5, "concat", 0, 99)
    assert meta.shape == (raw["shape"][0], 8) and meta.files == {"npy": "out.npy", "pt": None}
    assert meta.format_version == FORMAT_VERSION and meta.docs == "out.docs.npz"
    assert meta.counts["tokens_in"] == sum(1 + i % 7 for i in range(40))


@pytest.mark.parametrize("change,message", [
    ({"format_version": 99}, "not a fastpack meta of format_version 1"),
    ({"stride": None}, "stride must be an integer >= 1"),
    ({"shape": [3]}, r"shape must be \[n_windows, seq_len\]"),
])
def test_a_meta_of_another_version_or_shape_is_refused(tmp_path, change, message):
    good = PackMeta(name="x", files={"npy": "x.npy", "pt": None}, shape=(3, 4), dtype="int32", seq_len=4, stride=4,
                    mode="concat").to_json()
    path = tmp_path / "x.meta.json"
    path.write_text(json.dumps(good | change))
    with pytest.raises(UserError, match=message):
        PackMeta.read(path)
    del good["mode"]
    path.write_text(json.dumps(good))
    with pytest.raises(UserError, match="x.meta.json: meta lacks mode"):
        PackMeta.read(path)
