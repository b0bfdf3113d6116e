"""pack_sequences over real token JSONL files against the plain reference."""
import json

import numpy as np
import pytest

from fastpack import pack_sequences, read_token_batches
from packer_reference import reference_docs, reference_windows

EDGE_LINES = [
    '{"input_ids": [1, 2, 3]}',
    '{"text": "a \\"input_ids\\": [9, 9] decoy", "input_ids": [4, 5]}',
    '{"input_ids":[6,7],"text":"after"}',
    "",
    "   ",
    '{"ids": [8]}',
    '{"tokens": []}',
    '{"token_ids": [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]}',
    '{"meta": {"input_ids": [99], "nested": [[1, {"a": null}], true, false, -1.5e3]}, "input_ids": [21]}',
    '{ "input_ids" : [ 22 , 23 ] , "x" : "Chương một: \\u00e0 \\n\\t\\\\ /" }',
    '{"text": "Tiếng Việt có dấu: ướt át, khuya khoắt 😀", "input_ids": [24, 25, 26]}',
    '{"ids": [100], "input_ids": [27]}',
    '{"input_ids": [28, 29], "ids": [100]}',
    '{"input_ids": [], "text": ""}',
    '{"input_ids": [0, 30, 2147483647]}',
]


def write_lines(path, lines, newline="\n", final_newline=True, bom=False):
    data = newline.join(lines) + (newline if final_newline else "")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    return path


def packed(path):
    return np.load(path, mmap_mode="r")


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("final_newline", [True, False])
@pytest.mark.parametrize("bom", [False, True])
def test_edge_lines_match_reference(tmp_path, newline, final_newline, bom, many_parts):
    src = write_lines(tmp_path / "in.jsonl", EDGE_LINES, newline, final_newline, bom)
    summary = pack_sequences(src, tmp_path / "out.npy", seq_len=4, stride=3, eos_id=0, block_bytes=64)
    docs = reference_docs([src])
    assert docs[8] == [24, 25, 26] and docs[9] == [27] and docs[10] == [28, 29]  # the reference sees the same
    np.testing.assert_array_equal(packed(tmp_path / "out.npy"), reference_windows(docs, 4, 3, eos=0))
    assert summary.counts["documents"] == len(docs) == 13
    assert summary.counts["empty_documents"] == 2
    assert summary.counts["tokens_in"] == sum(map(len, docs))


@pytest.mark.parametrize("block_bytes", [64, 100, 1000, 1 << 20])
@pytest.mark.parametrize("seq_len,stride", [(1, 1), (7, 7), (7, 2), (50, 50)])
def test_windows_span_blocks_and_files(tmp_path, block_bytes, seq_len, stride, many_parts):
    rng = np.random.default_rng(0)
    files = []
    for k in range(3):
        lines = [json.dumps({"id": i, "input_ids": rng.integers(0, 50000, rng.integers(0, 40)).tolist()})
                 for i in range(60)]
        files.append(write_lines(tmp_path / f"in{k}.jsonl", lines))
    pack_sequences(files, tmp_path / "out.npy", seq_len=seq_len, stride=stride, eos_id=1, bos_id=2,
                   block_bytes=block_bytes)
    want = reference_windows(reference_docs(files), seq_len, stride, eos=1, bos=2)
    np.testing.assert_array_equal(packed(tmp_path / "out.npy"), want)


def test_one_line_longer_than_the_block(tmp_path):
    long_doc = list(range(5000))
    src = write_lines(tmp_path / "in.jsonl", [json.dumps({"input_ids": [1]}), json.dumps({"input_ids": long_doc})])
    pack_sequences(src, tmp_path / "out.npy", seq_len=16, eos_id=0, block_bytes=64)
    np.testing.assert_array_equal(packed(tmp_path / "out.npy"), reference_windows([[1], long_doc], 16, eos=0))


@pytest.mark.parametrize("mode,pad_last", [("concat", True), ("document", False)])
def test_padding_modes_from_files(tmp_path, mode, pad_last, many_parts):
    src = write_lines(tmp_path / "in.jsonl", EDGE_LINES)
    summary = pack_sequences(src, tmp_path / "out.npy", seq_len=5, stride=2, eos_id=0, pad_id=31, mode=mode,
                             pad_last=pad_last, block_bytes=80)
    want = reference_windows(reference_docs([src]), 5, 2, mode, eos=0, pad=31, pad_last=pad_last)
    np.testing.assert_array_equal(packed(tmp_path / "out.npy"), want)
    assert summary.counts["padded"] == int((want == 31).sum())


def test_field_option_and_dtype(tmp_path):
    src = write_lines(tmp_path / "in.jsonl", ['{"input_ids": [1], "mine": [5, 6]}', '{"mine": [7]}'])
    pack_sequences(src, tmp_path / "out.npy", seq_len=1, add_eos=False, field="mine", dtype="uint16")
    out = packed(tmp_path / "out.npy")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out.ravel(), [5, 6, 7])


def test_thread_count_does_not_change_output(tmp_path, many_parts):
    import numba

    rng = np.random.default_rng(1)
    lines = [json.dumps({"input_ids": rng.integers(0, 1000, rng.integers(0, 30)).tolist()}) for _ in range(500)]
    src = write_lines(tmp_path / "in.jsonl", lines)
    outputs = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        try:
            pack_sequences(src, tmp_path / f"out{threads}.npy", seq_len=8, stride=3, eos_id=0, block_bytes=2000)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        outputs.append(np.load(tmp_path / f"out{threads}.npy"))
    np.testing.assert_array_equal(outputs[0], outputs[-1])


def test_read_token_batches_and_arrow_view(tmp_path, many_parts):
    src = write_lines(tmp_path / "in.jsonl", EDGE_LINES)
    batches = list(read_token_batches(src, block_bytes=128))
    docs = [b.values[b.offsets[i]:b.offsets[i + 1]].tolist() for b in batches for i in range(b.n_docs)]
    assert docs == reference_docs([src])
    arrow = batches[0].to_arrow()
    assert arrow.to_pylist() == docs[: batches[0].n_docs]
    assert arrow.values.buffers()[1].address == batches[0].values.ctypes.data  # zero-copy


def test_shards_partition_the_documents(tmp_path):
    lines = [json.dumps({"input_ids": [i, i + 1000]}) for i in range(200)]
    src = write_lines(tmp_path / "in.jsonl", lines)
    got = []
    for i in range(3):
        summary = pack_sequences(src, tmp_path / "out.npy", seq_len=1, add_eos=False, num_shards=3, shard_index=i)
        assert summary.files["npy"].endswith(f"out-{i:05d}-of-00003.npy")
        got.append(np.load(summary.files["npy"]).ravel())
    assert all(g.size for g in got)
    np.testing.assert_array_equal(np.concatenate(got), np.array(reference_docs([src])).ravel())


def test_parquet_and_arrow_inputs_equal_jsonl(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(2)
    docs = [rng.integers(0, 30000, rng.integers(0, 25)).tolist() for _ in range(300)]
    table = pa.table({"text": ["x"] * len(docs), "input_ids": pa.array(docs, pa.list_(pa.int64()))})
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=37)
    with pa.OSFile(str(tmp_path / "in.arrow"), "wb") as f, pa.ipc.new_stream(f, table.schema) as w:  # HF's format
        w.write_table(table, max_chunksize=50)
    with pa.OSFile(str(tmp_path / "in.feather"), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
        w.write_table(table, max_chunksize=50)
    want = reference_windows(docs, 16, 5, eos=0)
    for name in ("in.parquet", "in.arrow", "in.feather"):
        pack_sequences(tmp_path / name, tmp_path / "out.npy", seq_len=16, stride=5, eos_id=0, force=True)
        np.testing.assert_array_equal(packed(tmp_path / "out.npy"), want, err_msg=name)
    got = []
    for i in range(2):
        s = pack_sequences(tmp_path / "in.parquet", tmp_path / "sh.npy", seq_len=1, add_eos=False, num_shards=2,
                           shard_index=i)
        got.append(np.load(s.files["npy"]).ravel())
    np.testing.assert_array_equal(np.concatenate(got), [t for d in docs for t in d])


def test_arrow_bad_rows_error_or_skip(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fastpack.errors import UserError

    rows = [[1, 2], [3, -4], None, [5, None], [6, 2**40], [7]]
    pq.write_table(pa.table({"input_ids": pa.array(rows, pa.list_(pa.int64()))}), tmp_path / "in.parquet")
    with pytest.raises(UserError, match=r"in.parquet: row 2: input_ids\[1\] = -4 is negative"):
        pack_sequences(tmp_path / "in.parquet", tmp_path / "out.npy", seq_len=1, add_eos=False)
    summary = pack_sequences(tmp_path / "in.parquet", tmp_path / "out.npy", seq_len=1, add_eos=False,
                             on_bad_line="skip")
    assert summary.counts["skipped_lines"] == 4
    assert any("row 4: input_ids[1] = null" in e for e in summary.bad_line_examples)
    np.testing.assert_array_equal(packed(tmp_path / "out.npy").ravel(), [1, 2, 7])
