"""Megatron-LM `.bin` + `.idx` input: one reader class, the rest of the packer unchanged."""
import struct

import numpy as np
import pytest

from fastpack import pack_sequences
from fastpack.errors import UserError
from packer_reference import reference_windows
from test_packer_cli import assert_user_error, run

# documents as lists of sequences (Megatron indexes sequences and groups them into documents)
DOCS = [[[5, 6, 7], [8]], [[9, 10]], [], [[11, 12, 13, 14, 15, 16, 17, 18, 19, 20]], [[]], [[21]], [[22, 23], [24]]]


def write_megatron(prefix, docs, dtype=np.uint16, code=8):
    """The layout Megatron's MMapIndexedDataset writes, spelled out by hand."""
    seqs = [np.array(s, dtype) for doc in docs for s in doc]
    sizes = np.array([s.size for s in seqs], np.int32)
    pointers = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) * np.dtype(dtype).itemsize
    doc_idx = np.cumsum([0] + [len(doc) for doc in docs]).astype(np.int64)
    (prefix.parent / (prefix.name + ".bin")).write_bytes(b"".join(s.tobytes() for s in seqs))
    header = b"MMIDIDX\x00\x00" + struct.pack("<QBQQ", 1, code, sizes.size, doc_idx.size)
    (prefix.parent / (prefix.name + ".idx")).write_bytes(header + sizes.tobytes() + pointers.tobytes()
                                                         + doc_idx.tobytes())
    return prefix.parent / (prefix.name + ".bin")


def flat(docs):
    return [[t for s in doc for t in s] for doc in docs]


def test_cli_packs_megatron_documents_like_the_reference(tmp_path):
    src = write_megatron(tmp_path / "corpus_text_document", DOCS)
    proc = run("--input", src, "--output", tmp_path / "o.npy", "--seq-len", 4, "--stride", 3, "--eos-id", 0)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), reference_windows(flat(DOCS), 4, 3, eos=0))
    for k in range(2):
        proc = run("--input", src, "--output", tmp_path / "s.npy", "--seq-len", 2, "--eos-id", 0,
                   "--num-shards", 2, "--shard-index", k)
        assert proc.returncode == 0, proc.stderr
        mine = flat(DOCS)[k * len(DOCS) // 2:(k + 1) * len(DOCS) // 2]  # shards split documents
        np.testing.assert_array_equal(np.load(tmp_path / f"s-0000{k}-of-00002.npy"), reference_windows(mine, 2, eos=0))


def test_many_batches_and_bestfit(tmp_path, monkeypatch):
    from fastpack.readers import MegatronReader

    monkeypatch.setattr(MegatronReader, "_BATCH_TOKENS", 3)
    src = write_megatron(tmp_path / "c", DOCS, np.int32, 4)
    pack_sequences(src, tmp_path / "o.npy", seq_len=5, mode="bestfit", eos_id=0, pad_id=99)
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"),
                                  reference_windows(flat(DOCS), 5, mode="bestfit", eos=0, pad=99))


def test_bad_index_and_out_of_range_ids_are_one_line_errors(tmp_path):
    src = write_megatron(tmp_path / "c", DOCS)
    assert_user_error(run("--input", src, "--output", tmp_path / "o.npy", "--eos-id", 0, "--vocab-size", 20),
                      "c.bin: document 4: tokens[9] = 20 is >= vocab size 20")
    src.with_suffix(".idx").write_bytes(b"MMIDIDX\x00\x00" + struct.pack("<QBQQ", 2, 8, 0, 1))
    assert_user_error(run("--input", src, "--output", tmp_path / "o.npy", "--eos-id", 0), "not a Megatron index")
    src.with_suffix(".idx").unlink()
    with pytest.raises(UserError, match=r"c.idx: not found \(a Megatron .bin is read with the .idx beside it\)"):
        pack_sequences(src, tmp_path / "o.npy", seq_len=4, eos_id=0)
