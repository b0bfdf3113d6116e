"""Stage 2, split: the preprocessed JSONL -> `dataset/splits/{train,val,test}.jsonl` + `reports/split_summary.json`.

Documents are grouped by `split.group_key` (default `source`: all chapters of one novel), and a
group never straddles splits. The rule (`assign_splits`):

1. rank groups by sha256(salt + "\\0" + key) (its first 8 bytes, big-endian; ties by key);
2. walk them in that order, summing characters; a group goes to train while the middle of its
   character range lies below `train` of the total, then to val below `train + val`, then test;
3. every split with a ratio > 0 gets at least one group: an empty split takes one from the
   split holding the most groups (the blocks stay contiguous in hash order).

So the assignment depends only on the groups' hashes and sizes, not on file order. Adding a group
shifts each cut by at most that group's characters, so only groups that close to a cut can change
split (with equal-size groups: at most one per cut); the rest keep theirs. Fewer groups than
non-empty splits is an error.
Lines are copied byte for byte; within a split they keep their preprocessed order.
"""
from __future__ import annotations

import hashlib
from array import array
from dataclasses import asdict
from pathlib import Path

from fastpack.atomic import write_json_atomic
from fastpack.config import SPLITS, Config, SplitConfig
from fastpack.corpus.build import Build, StageResult, fingerprint, read_build, rel, up_to_date
from fastpack.corpus.jsonl import iter_lines, open_output, parse_record, require_file, text_of
from fastpack.corpus.progress import byte_bar
from fastpack.errors import UserError

VERSION = 1
SUMMARY_REPORT = "split_summary.json"
MAX_LISTED_GROUPS = 1000


def group_hash(key: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}\0{key}".encode("utf-8")).digest()[:8], "big")


def assign_splits(sizes: dict[str, int], cfg: SplitConfig) -> dict[str, str]:
    """group key -> split name, by hash rank and cumulative size (see the module docstring)."""
    ratios = [cfg.train, cfg.val, cfg.test]
    wanted = [name for name, r in zip(SPLITS, ratios) if r > 0]
    if len(sizes) < len(wanted):
        raise UserError(f"split: found {len(sizes)} group(s) by {cfg.group_key!r}, need at least {len(wanted)} "
                        f"so that {', '.join(wanted)} each get one (add novels, or set a split ratio to 0)")
    order = sorted(sizes, key=lambda k: (group_hash(k, cfg.salt), k))
    total = sum(sizes.values()) or 1
    bounds = [cfg.train, cfg.train + cfg.val]
    counts = [0, 0, 0]
    before = 0
    for key in order:
        middle = (before + sizes[key] / 2) / total
        counts[next((i for i, b in enumerate(bounds) if middle < b), 2)] += 1
        before += sizes[key]
    for i, ratio in enumerate(ratios):
        if ratio > 0 and counts[i] == 0:
            donor = max(range(3), key=lambda j: (counts[j], -j))
            counts[donor] -= 1
            counts[i] += 1
    names = [SPLITS[i] for i in range(3) for _ in range(counts[i])]
    return dict(zip(order, names))


def split_corpus(config: Config, root: str | Path, *, force: bool = False, show_progress: bool = False) -> StageResult:
    """Split the preprocessed corpus by group (skipped when up to date)."""
    root = Path(root).resolve()
    cfg, paths = config.split, config.paths
    source = require_file(paths.resolve(root, "preprocessed"), "preprocessed corpus",
                          "run `python -m fastpack.corpus clean` first")
    splits_dir = paths.resolve(root, "splits_dir")
    outputs = [splits_dir / f"{name}.jsonl" for name in SPLITS]
    summary_path = paths.resolve(root, "reports_dir") / SUMMARY_REPORT
    build = Build(stage="split", version=VERSION, inputs=[fingerprint(source, root)], params=asdict(cfg))
    if not force and up_to_date(read_build(summary_path), build, outputs, root):
        return StageResult("split", True, f"split: up to date ({rel(splits_dir, root)} from the same "
                           f"{rel(source, root)} and split settings)", tuple(outputs))

    # Pass 1: each line's group and each group's size; memory is one int per document.
    size = source.stat().st_size
    group_ids: dict[str, int] = {}
    sizes: list[int] = []
    line_group = array("I")
    with byte_bar(size, "split: groups", show_progress) as bar:
        for lineno, line in iter_lines(source):
            record = parse_record(source, lineno, line)
            key = record.get(cfg.group_key)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise UserError(f"{source}:{lineno}: expected a string field {cfg.group_key!r} "
                                f"(split.group_key), found {type(key).__name__ if key is not None else 'none'}")
            gid = group_ids.setdefault(str(key), len(group_ids))
            if gid == len(sizes):
                sizes.append(0)
            sizes[gid] += len(text_of(source, lineno, record))
            line_group.append(gid)
            bar.update(len(line) + 1)
    assignment = assign_splits(dict(zip(group_ids, sizes)), cfg)
    split_of_group = [SPLITS.index(assignment[key]) for key in group_ids]

    # Pass 2: copy each line to its split, in input order.
    stats = {name: {"documents": 0, "characters": 0, "groups": []} for name in SPLITS}
    for key, gid in group_ids.items():
        split = stats[SPLITS[split_of_group[gid]]]
        split["groups"].append(key)
        split["characters"] += sizes[gid]
    written: list[dict] = []
    summary_path.unlink(missing_ok=True)  # the marker goes first: an interrupted rebuild is redone next time
    with byte_bar(size, "split: write", show_progress) as bar, \
            open_output(outputs[0], root, written) as train, \
            open_output(outputs[1], root, written) as val, \
            open_output(outputs[2], root, written) as test:
        writers = (train, val, test)
        for i, (_, line) in enumerate(iter_lines(source)):
            s = split_of_group[line_group[i]]
            writers[s].write(line + b"\n")
            stats[SPLITS[s]]["documents"] += 1
            bar.update(len(line) + 1)

    written.sort(key=lambda e: [rel(p, root) for p in outputs].index(e["path"]))
    total_chars = sum(sizes) or 1
    summary = {
        "stage": "split",
        "group_key": cfg.group_key,
        "groups": len(group_ids),
        "documents": len(line_group),
        "characters": sum(sizes),
        "ratios": {"target": {n: getattr(cfg, n) for n in SPLITS},
                   "actual": {n: round(stats[n]["characters"] / total_chars, 6) for n in SPLITS}},
        "splits": {n: {"documents": stats[n]["documents"], "characters": stats[n]["characters"],
                       "groups": len(stats[n]["groups"]),
                       "group_keys": sorted(stats[n]["groups"])[:MAX_LISTED_GROUPS]} for n in SPLITS},
        "build": build.with_outputs(written).to_dict(),
    }
    write_json_atomic(summary_path, summary)
    parts = ", ".join(f"{n} {stats[n]['documents']} docs/{len(stats[n]['groups'])} groups" for n in SPLITS)
    return StageResult("split", False, f"split: {parts} -> {rel(splits_dir, root)}", tuple(outputs), summary)
