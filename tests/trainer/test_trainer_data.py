import json
import pickle

import numpy as np
import pytest
import torch

from fastpack.errors import UserError
from trainer.data import (PackedDataset, ResumableBatchSampler, check_split, eval_batches, find_split, load_shard,
                          shards_from_spec)


def mapped_files(address: int) -> list[str]:
    """Paths of the file mappings of this process that contain `address` (Linux /proc/self/maps)."""
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if lo <= address < hi and len(fields) >= 6:
                out.append(fields[5])
    return out


def arange_windows(n=6, seq_len=8, dtype=np.int32, start=10):
    return (np.arange(n * seq_len, dtype=np.int64).reshape(n, seq_len) + start).astype(dtype)


@pytest.mark.parametrize("dtype", [np.int32, np.uint16])
def test_items_are_exactly_the_numpy_windows_and_stay_memory_mapped(tmp_path, helpers, dtype):
    windows = arange_windows(dtype=dtype)
    windows[-1, 5:] = 0  # padding
    path = helpers.write_packed(tmp_path, "train", windows, pad_id=0)
    ds = PackedDataset([load_shard(path)])
    assert len(ds) == 6
    for i in range(6):
        item = ds[i]
        assert item["input_ids"].dtype == torch.int64
        assert np.array_equal(item["input_ids"].numpy(), windows[i])
        assert np.array_equal(ds.window(i), windows[i])
    assert ds[-1]["labels"].tolist() == windows[-1, :5].tolist() + [-100] * 3
    array = ds._open()[0]
    assert isinstance(array, np.memmap) and str(array.filename) == str(path.resolve())
    assert str(path.resolve()) in mapped_files(array.ctypes.data)


def test_pt_split_is_read_through_a_file_mapping(tmp_path, helpers):
    windows = arange_windows()
    path = helpers.write_packed(tmp_path, "train", windows, fmt="pt")
    ds = PackedDataset(find_split(tmp_path, "train", required=True))
    assert ds.shards[0].path.suffix == ".pt"
    assert np.array_equal(ds[3]["input_ids"].numpy(), windows[3])
    tensor = ds._open()[0]
    assert str(path.resolve()) in mapped_files(tensor.data_ptr())


def test_opens_lazily_and_workers_reopen(tmp_path, helpers):
    path = helpers.write_packed(tmp_path, "train", arange_windows())
    ds = PackedDataset([load_shard(path)])
    assert ds._arrays is None  # nothing opened by the constructor
    ds[0]
    assert ds._arrays is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._arrays is None
    assert np.array_equal(clone[5]["input_ids"].numpy(), arange_windows()[5])
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    assert torch.equal(torch.cat([b["input_ids"] for b in loader]), torch.from_numpy(arange_windows()).long())


def test_shards_read_as_one_dataset_from_a_list_or_a_glob(tmp_path, helpers):
    a, b = arange_windows(3, start=0), arange_windows(4, start=1000)
    pa = helpers.write_packed(tmp_path, "train-00000-of-00002", a, shard=(0, 2))
    pb = helpers.write_packed(tmp_path, "train-00001-of-00002", b, shard=(1, 2))
    expected = np.concatenate([a, b])
    for spec in ([pa, pb], str(tmp_path / "train-*.npy"), tmp_path):
        ds = PackedDataset(spec)
        assert len(ds) == 7
        assert [ds.locate(i) for i in (0, 2, 3, 6)] == [(0, 0), (0, 2), (1, 0), (1, 3)]
        assert all(np.array_equal(ds[i]["input_ids"].numpy(), expected[i]) for i in range(7))
    assert len(find_split(tmp_path, "train", required=True)) == 2
    with pytest.raises(IndexError, match="window 7 out of range for a dataset of 7 windows"):
        ds[7]


def test_missing_or_inconsistent_splits_are_user_errors(tmp_path, helpers):
    assert find_split(tmp_path, "val", required=False) is None
    with pytest.raises(UserError, match="no packed train split"):
        find_split(tmp_path, "train", required=True)
    np.save(tmp_path / "train.npy", arange_windows())
    with pytest.raises(UserError, match="no train.meta.json beside it"):
        find_split(tmp_path, "train", required=True)
    path = helpers.write_packed(tmp_path, "val", arange_windows())
    meta = json.loads(path.with_name("val.meta.json").read_text())
    meta["shape"] = [5, 8]
    path.with_name("val.meta.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"array shape \(6, 8\) does not match its meta \(5, 8\)"):
        find_split(tmp_path, "val", required=False)
    with pytest.raises(UserError, match="no .npy or .pt file matches"):
        shards_from_spec(str(tmp_path / "nothing-*.npy"))


def test_check_split_seq_len_and_vocab(tmp_path, helpers):
    windows = arange_windows()  # ids 10..57
    trusted = find_split(helpers.write_packed(tmp_path / "a", "train", windows, vocab_size=58).parent, "train", required=True)
    check_split(trusted, seq_len=8, vocab_size=58, log=lambda m: None)
    with pytest.raises(UserError, match="seq_len 8, but the model's context is 16"):
        check_split(trusted, seq_len=16, vocab_size=58)
    # No vocab in the meta: the data is scanned.
    scanned = find_split(helpers.write_packed(tmp_path / "b", "train", windows, vocab_size=None).parent, "train", required=True)
    check_split(scanned, seq_len=8, vocab_size=58)
    with pytest.raises(UserError, match="token id 57 >= the vocabulary size 57"):
        check_split(scanned, seq_len=8, vocab_size=57)
    # A meta claiming a larger vocabulary than the model's is not trusted either.
    bigger = find_split(helpers.write_packed(tmp_path / "c", "train", windows, vocab_size=100).parent, "train", required=True)
    with pytest.raises(UserError, match="token id 57"):
        check_split(bigger, seq_len=8, vocab_size=50)


def test_sampler_is_seeded_resumable_and_shares_each_global_batch(tmp_path):
    def take(sampler, k):
        it = iter(sampler)
        return [next(it) for _ in range(k)]

    n = 10
    one = take(ResumableBatchSampler(n, 4, rank=0, world_size=1, seed=7), 10)  # 40 samples = 4 epochs
    flat = [i for b in one for i in b]
    for epoch in range(4):
        assert sorted(flat[epoch * n : (epoch + 1) * n]) == list(range(n))  # each epoch a permutation
    assert flat[:n] != flat[n : 2 * n]  # reshuffled per epoch
    assert one == take(ResumableBatchSampler(n, 4, rank=0, world_size=1, seed=7), 10)
    assert one != take(ResumableBatchSampler(n, 4, rank=0, world_size=1, seed=8), 10)
    # Resuming at sample 12 continues the stream exactly, without drawing the first 3 batches.
    assert take(ResumableBatchSampler(n, 4, rank=0, world_size=1, seed=7, start=12), 7) == one[3:]
    # Two ranks split each global batch of 2 x 2: together they read the single-rank stream.
    r0 = take(ResumableBatchSampler(n, 2, rank=0, world_size=2, seed=7), 10)
    r1 = take(ResumableBatchSampler(n, 2, rank=1, world_size=2, seed=7), 10)
    assert [i for a, b in zip(r0, r1) for i in a + b] == flat
    with pytest.raises(UserError, match="no windows"):
        ResumableBatchSampler(0, 4, rank=0, world_size=1, seed=0)


def test_eval_batches_are_spread_fixed_and_shared():
    assert eval_batches(10, 2, max_batches=None, rank=0, world_size=1) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert eval_batches(100, 2, max_batches=2, rank=0, world_size=1) == [[0, 25], [50, 75]]
    r0 = eval_batches(10, 2, max_batches=None, rank=0, world_size=2)
    r1 = eval_batches(10, 2, max_batches=None, rank=1, world_size=2)
    assert sorted(i for b in r0 + r1 for i in b) == list(range(10))


# --- issue 8 item 3: overlap and document masks on hand-built windows --------------------------------

def test_overlap_labels_masked_in_concat_mode(tmp_path, helpers):
    stream = np.arange(10, 10 + 8 + 3 * 6, dtype=np.int32)  # 4 windows of 8 with stride 6: overlap 2
    windows = helpers.windows_of(stream, seq_len=8, stride=6)
    windows[3, 6:] = 0  # a padded last window
    helpers.write_packed(tmp_path, "val", windows, stride=6)
    plain = PackedDataset(find_split(tmp_path, "val", required=True))
    masked = PackedDataset(find_split(tmp_path, "val", required=True), mask_overlap=True)
    assert plain[1]["labels"].tolist() == windows[1].tolist()
    assert masked[0]["labels"].tolist() == windows[0].tolist()  # the split's first window keeps every label
    assert masked[1]["labels"].tolist() == [-100, -100] + windows[1, 2:].tolist()
    assert masked[3]["labels"].tolist() == [-100, -100] + windows[3, 2:6].tolist() + [-100, -100]
    # Every stream token after the first is a target exactly once (targets are labels[1:], shifted).
    targets = [t for i in range(4) for t in masked[i]["labels"][1:].tolist() if t != -100]
    assert targets == stream[1 : 8 + 3 * 6 - 2].tolist()


def test_overlap_in_document_mode_only_within_a_document(tmp_path, helpers):
    doc_a = np.arange(100, 111)  # 11 tokens: windows [0:8], [6:14 padded]
    doc_b = np.arange(200, 206)  # 6 tokens: one padded window
    windows = np.zeros((3, 8), dtype=np.int32)
    windows[0] = doc_a[:8]
    windows[1, :5] = doc_a[6:]
    windows[2, :6] = doc_b
    helpers.write_packed(tmp_path, "val", windows, stride=6, mode="document")
    ds = PackedDataset(find_split(tmp_path, "val", required=True), mask_overlap=True)
    assert ds[1]["labels"].tolist() == [-100, -100, 108, 109, 110, -100, -100, -100]
    assert ds[2]["labels"].tolist() == doc_b.tolist() + [-100, -100]  # a new document: nothing shared


def test_document_ids_positions_and_padding_from_the_sidecar(tmp_path, helpers):
    windows = np.array([[5, 6, 3, 7, 8, 9, 3, 0], [4, 4, 4, 4, 4, 4, 4, 3]], dtype=np.int32)
    # pad_id == eos_id is where the sidecar matters: only the trailing position is padding.
    helpers.write_packed(tmp_path, "train", windows, pad_id=3, segments=[[3, 4], [8]])
    ds = PackedDataset(find_split(tmp_path, "train", required=True), document_attention=True)
    item = ds[0]
    assert item["doc_ids"].tolist() == [0, 0, 0, 1, 1, 1, 1, 2]
    assert item["position_ids"].tolist() == [0, 1, 2, 0, 1, 2, 3, 0]
    assert item["labels"].tolist() == [5, 6, 3, 7, 8, 9, 3, -100]
    assert ds[1]["doc_ids"].tolist() == [0] * 8 and ds[1]["labels"].tolist() == windows[1].tolist()
    helpers.write_packed(tmp_path / "nosidecar", "train", windows)
    with pytest.raises(UserError, match="needs the boundaries sidecar"):
        PackedDataset(find_split(tmp_path / "nosidecar", "train", required=True), document_attention=True)
