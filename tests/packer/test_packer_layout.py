"""Best-fit packing, the boundaries sidecar and the audit, against the plain reference."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastpack import pack_arrays, pack_sequences
from fastpack.audit import audit
from fastpack.boundaries import read_boundaries
from fastpack.errors import UserError
from packer_reference import reference_docs, reference_layout, reference_segments

DOCS = [[1, 2, 3], [4, 5], [], [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17], [18], [], list(range(20, 45)), [46, 47]]


def write_docs(path, docs):
    path.write_text("".join(json.dumps({"id": i, "input_ids": d}) + "\n" for i, d in enumerate(docs)))
    return path


@pytest.mark.parametrize("seq_len", [1, 3, 4, 8, 64])
@pytest.mark.parametrize("eos,bos", [(0, None), (None, None), (0, 99)])
def test_bestfit_matches_reference_placement(seq_len, eos, bos):
    got = pack_arrays(DOCS, seq_len=seq_len, mode="bestfit", eos_id=eos, add_eos=eos is not None, bos_id=bos,
                      pad_id=77)
    want, _ = reference_layout(DOCS, seq_len, mode="bestfit", eos=eos, bos=bos, pad=77)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=200, deadline=None)
@given(docs=st.lists(st.lists(st.integers(1, 500), max_size=30), max_size=40), seq_len=st.integers(1, 16))
def test_bestfit_property_no_token_lost_or_duplicated(docs, seq_len):
    got = pack_arrays(docs, seq_len=seq_len, mode="bestfit", eos_id=0, pad_id=1000)
    want, _ = reference_layout(docs, seq_len, mode="bestfit", eos=0, pad=1000)
    np.testing.assert_array_equal(got, want)
    real = got[got != 1000]
    expected = [t for d in docs if d for t in d + [0]]
    assert sorted(real.tolist()) == sorted(expected)
    assert got.shape[0] >= -(-len(expected) // seq_len)  # never fewer windows than the tokens need


@pytest.mark.parametrize("mode,stride,pad_last", [("concat", 8, False), ("concat", 3, True), ("concat", 8, True),
                                                  ("document", 8, False), ("document", 5, False),
                                                  ("bestfit", 8, False)])
def test_sidecar_matches_reference_segments(tmp_path, mode, stride, pad_last, many_parts):
    src = write_docs(tmp_path / "in.jsonl", DOCS)
    pack_sequences(src, tmp_path / "out.npy", seq_len=8, stride=stride, mode=mode, eos_id=0, pad_id=77,
                   pad_last=pad_last, block_bytes=64)
    windows, owners = reference_layout(DOCS, 8, stride, mode, eos=0, pad=77, pad_last=pad_last)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), windows)
    got = read_boundaries(tmp_path / "out.docs.npz")
    for name, want in reference_segments(owners).items():
        np.testing.assert_array_equal(got[name], want, err_msg=name)
    meta = json.loads((tmp_path / "out.meta.json").read_text())
    assert meta["docs"] == "out.docs.npz"


def test_sidecar_consistent_with_eos_positions(tmp_path):
    """In concat mode with eos only, a segment ends with eos exactly when its document ends in that window."""
    rng = np.random.default_rng(5)
    docs = [rng.integers(1, 100, rng.integers(1, 30)).tolist() for _ in range(200)]
    src = write_docs(tmp_path / "in.jsonl", docs)
    pack_sequences(src, tmp_path / "out.npy", seq_len=16, eos_id=0)
    windows, b = np.load(tmp_path / "out.npy"), read_boundaries(tmp_path / "out.docs.npz")
    for w, row in enumerate(windows):
        a, z = b["window_offsets"][w], b["window_offsets"][w + 1]
        ends = np.cumsum(b["segment_lengths"][a:z])
        assert ends[-1] == 16
        eos_at = np.flatnonzero(row == 0) + 1
        np.testing.assert_array_equal(eos_at, ends[: eos_at.size])
        assert set(ends[:-1]) <= set(eos_at)


def test_bestfit_independent_of_block_size_and_threads(tmp_path, many_parts):
    import numba

    rng = np.random.default_rng(3)
    docs = [rng.integers(1, 1000, rng.integers(0, 50)).tolist() for _ in range(300)]
    src = write_docs(tmp_path / "in.jsonl", docs)
    outputs = []
    for block, threads in ((64, 1), (1000, numba.config.NUMBA_NUM_THREADS), (1 << 20, 1)):
        numba.set_num_threads(threads)
        try:
            pack_sequences(src, tmp_path / f"o{block}.npy", seq_len=32, mode="bestfit", eos_id=0, pad_id=1001,
                           block_bytes=block)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        outputs.append((np.load(tmp_path / f"o{block}.npy"), read_boundaries(tmp_path / f"o{block}.docs.npz")))
    for out, sidecar in outputs[1:]:
        np.testing.assert_array_equal(out, outputs[0][0])
        for name in sidecar:
            np.testing.assert_array_equal(sidecar[name], outputs[0][1][name])


def test_bestfit_summary_accounting(tmp_path):
    src = write_docs(tmp_path / "in.jsonl", DOCS)
    summary = pack_sequences(src, tmp_path / "out.npy", seq_len=8, mode="bestfit", eos_id=0, pad_id=77)
    windows, _ = reference_layout(DOCS, 8, mode="bestfit", eos=0, pad=77)
    c = summary.counts
    assert c["windows"] == windows.shape[0] and c["padded"] == int((windows == 77).sum()) and c["dropped"] == 0
    assert c["documents_split"] == 2 and c["documents_truncated"] == 0  # the two documents longer than 8


def test_bestfit_needs_stride_equal_seq_len():
    with pytest.raises(UserError, match="--stride must equal --seq-len"):
        pack_arrays(DOCS, seq_len=8, stride=4, mode="bestfit", eos_id=0, pad_id=1)


@pytest.mark.parametrize("mode,stride,pad_last", [("concat", 8, False), ("concat", 3, True), ("document", 5, False),
                                                  ("bestfit", 8, False)])
def test_audit_passes_then_catches_a_corrupted_window(tmp_path, mode, stride, pad_last):
    src = write_docs(tmp_path / "in.jsonl", DOCS * 3)
    pack_sequences(src, tmp_path / "out.npy", seq_len=8, stride=stride, mode=mode, eos_id=0, pad_id=77,
                   pad_last=pad_last)
    report = audit(tmp_path / "out.npy")
    assert report.ok, report.problems
    x = report.numbers
    assert x["source_tokens"] == 3 * sum(map(len, DOCS))
    assert x["source_tokens"] + x["separators"] == x["window_tokens"] - x["duplicated_overlap"] + x["dropped"]
    out = np.load(tmp_path / "out.npy", mmap_mode="r+")
    out[1, 2] += 1
    out.flush()
    del out
    report = audit(tmp_path / "out.npy")
    assert not report.ok and any("window 1" in p or "document" in p for p in report.problems), report.problems


def test_audit_catches_a_lost_document_in_the_sidecar_and_the_meta(tmp_path):
    src = write_docs(tmp_path / "in.jsonl", DOCS)
    pack_sequences(src, tmp_path / "out.npy", seq_len=8, eos_id=0)
    src.write_text(src.read_text() + json.dumps({"input_ids": [5, 5, 5, 5, 5, 5, 5, 5]}) + "\n")
    report = audit(tmp_path / "out.npy")
    assert not report.ok and any("windows packed, the sources give" in p for p in report.problems)
    assert any("tokens_in" in p for p in report.problems)


def test_audit_cli(tmp_path):
    import subprocess
    import sys

    src = write_docs(tmp_path / "in.jsonl", DOCS)
    pack_sequences(src, tmp_path / "out.npy", seq_len=4, stride=2, eos_id=0)
    proc = subprocess.run([sys.executable, "-m", "fastpack", "audit", str(tmp_path / "out.meta.json"), "--input",
                           str(src)], capture_output=True, text=True)
    assert proc.returncode == 0 and "audit passed" in proc.stdout, proc.stdout + proc.stderr
    assert reference_docs([src]) == DOCS
