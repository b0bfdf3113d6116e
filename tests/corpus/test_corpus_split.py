"""The split: the hash-rank + cumulative-size rule against a naive twin, stability, the stage's files."""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastpack.config import SPLITS, Config, SplitConfig
from fastpack.corpus import assign_splits, split_corpus
from fastpack.errors import UserError

CFG = SplitConfig()


def naive_assign(sizes: dict[str, int], train: float, val: float, salt: str) -> dict[str, str]:
    """The rule written out plainly: rank by sha256, cut where a group's middle character falls, fill empties."""
    def rank(key):
        return int(hashlib.sha256((salt + "\x00" + key).encode()).hexdigest()[:16], 16), key
    keys = sorted(sizes, key=rank)
    total = sum(sizes.values())
    names, seen = [], 0
    for key in keys:
        middle = (seen + sizes[key] / 2) / total
        names.append("train" if middle < train else "val" if middle < train + val else "test")
        seen += sizes[key]
    counts = [names.count(s) for s in SPLITS]
    for i, ratio in enumerate((train, val, 1 - train - val)):
        if ratio > 1e-12 and counts[i] == 0:
            donor = max(range(3), key=lambda j: (counts[j], -j))
            counts[donor] -= 1
            counts[i] += 1
    names = ["train"] * counts[0] + ["val"] * counts[1] + ["test"] * counts[2]
    return dict(zip(keys, names))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), st.integers(1, 10_000), min_size=3, max_size=60))
def test_assign_matches_the_naive_twin_and_fills_every_split(sizes):
    got = assign_splits(sizes, CFG)
    assert got == naive_assign(sizes, 0.9, 0.05, CFG.salt)
    assert {s: list(got.values()).count(s) > 0 for s in SPLITS} == {"train": True, "val": True, "test": True}


def test_three_groups_one_each_and_two_is_an_error():
    got = assign_splits({"a": 1000, "b": 10, "c": 10}, CFG)
    assert sorted(got.values()) == ["test", "train", "val"]
    with pytest.raises(UserError, match=r"found 2 group\(s\) by 'source', need at least 3 so that train, val, test"):
        assign_splits({"a": 1, "b": 2}, CFG)


def test_a_zero_ratio_split_stays_empty_and_lowers_the_minimum():
    cfg = SplitConfig(train=0.9, val=0.1, test=0.0)
    got = assign_splits({"a": 5, "b": 5}, cfg)
    assert sorted(got.values()) == ["train", "val"]


def test_assignment_ignores_insertion_order():
    sizes = {f"novel-{i}": 100 + 37 * i for i in range(40)}
    keys = list(sizes)
    random.Random(1).shuffle(keys)
    assert assign_splits({k: sizes[k] for k in keys}, CFG) == assign_splits(sizes, CFG)


def test_adding_a_group_moves_at_most_one_neighbour_per_cut():
    sizes = {f"novel-{i:03d}": 1000 for i in range(60)}
    before = assign_splits(sizes, CFG)
    for extra in range(20):
        after = assign_splits({**sizes, f"new-{extra}": 1000}, CFG)
        moved = [k for k in sizes if after[k] != before[k]]
        assert len(moved) <= 2, moved
        order = sorted(sizes, key=lambda k: hashlib.sha256(f"{CFG.salt}\0{k}".encode()).digest())
        for key in moved:  # only a group at the edge of its block can cross a cut
            i = order.index(key)
            neighbours = {before[order[j]] for j in (i - 1, i + 1) if 0 <= j < len(order)}
            assert neighbours - {before[key]}, key


def test_salt_reshuffles():
    sizes = {f"n{i}": 10 for i in range(200)}
    a = assign_splits(sizes, CFG)
    b = assign_splits(sizes, SplitConfig(salt="other"))
    assert a != b and sorted(a.values()) == sorted(b.values())


def preprocessed(root: Path, groups: dict[str, int]) -> Config:
    config = Config()
    lines = []
    for g, docs in groups.items():
        lines += [orjson.dumps({"id": f"{g}#{i}", "source": g, "text": f"{g} chương {i} " * (i + 1)}) for i in range(docs)]
    random.Random(0).shuffle(lines)
    path = root / config.paths.preprocessed
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return config


def read_split(root: Path, name: str) -> list[dict]:
    return [orjson.loads(x) for x in (root / f"dataset/splits/{name}.jsonl").read_bytes().splitlines()]


def test_split_files_keep_groups_whole_and_lines_in_order(tmp_path):
    config = preprocessed(tmp_path, {f"novel{i}": 1 + i % 4 for i in range(30)})
    result = split_corpus(config, tmp_path)
    source_lines = (tmp_path / config.paths.preprocessed).read_bytes().splitlines()
    seen: dict[str, str] = {}
    total = 0
    for name in SPLITS:
        records = read_split(tmp_path, name)
        total += len(records)
        for r in records:
            assert seen.setdefault(r["source"], name) == name  # no group straddles splits
        positions = [source_lines.index(orjson.dumps(r)) for r in records]
        assert positions == sorted(positions)  # input order kept
        assert records, name
    assert total == len(source_lines)
    summary = json.loads((tmp_path / "reports/split_summary.json").read_text())
    for name in SPLITS:
        records = read_split(tmp_path, name)
        assert summary["splits"][name]["documents"] == len(records)
        assert summary["splits"][name]["characters"] == sum(len(r["text"]) for r in records)
        assert summary["splits"][name]["group_keys"] == sorted({r["source"] for r in records})
    assert not result.skipped and split_corpus(config, tmp_path).skipped


def test_split_is_deterministic_across_runs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        split_corpus(preprocessed(root, {f"n{i}": 2 for i in range(12)}), root)
    for name in SPLITS:
        assert (a / f"dataset/splits/{name}.jsonl").read_bytes() == (b / f"dataset/splits/{name}.jsonl").read_bytes()


def test_split_errors(tmp_path):
    config = preprocessed(tmp_path, {"only": 5, "two": 3})
    with pytest.raises(UserError, match=r"found 2 group\(s\)"):
        split_corpus(config, tmp_path)
    with pytest.raises(UserError, match=r"preprocessed corpus not found \(run `python -m fastpack.corpus clean` first\)"):
        split_corpus(config, tmp_path / "elsewhere")
    path = tmp_path / config.paths.preprocessed
    path.write_bytes(b'{"id": 1, "text": "a"}\n')
    with pytest.raises(UserError, match=r"all_novels_preprocessed_clean.jsonl:1: expected a string field 'source'"):
        split_corpus(config, tmp_path)
