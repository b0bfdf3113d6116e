"""Best-fit packing (issue 8) against concat, whole processes on the main corpus at stride = seq_len.

Targets: padding below 1% of window tokens, no document truncated beyond the cutting of those
longer than seq_len, and at least half of concat's throughput (best-fit reads the input twice).
"""
from __future__ import annotations

import json
import shutil

from benchmarks.measure import Job, child_env, fastpack_argv, interleaved, paired_speedup, series

PAD_TARGET = 0.01
THROUGHPUT_TARGET = 0.5


def test_bestfit_vs_concat(benchmark, bench, report, scratch, corpus):
    tokens = corpus["tokens"]
    out = scratch / "bestfit"
    out.mkdir(exist_ok=True)
    env = child_env()
    argv = fastpack_argv(corpus["path"], out / "bestfit.npy", seq_len=bench.seq_len, stride=bench.seq_len)
    jobs = {"bestfit": Job(argv + ["--mode", "bestfit", "--pad-id", "1"], out / "bestfit.npy", out, env),
            "concat": Job(fastpack_argv(corpus["path"], out / "concat.npy", seq_len=bench.seq_len,
                                        stride=bench.seq_len), out / "concat.npy", out, env)}
    benchmark.group = f"best-fit vs concat, {tokens / 1e6:g}M tokens"
    try:
        jobs["bestfit"].run()  # warm-up, untimed
        runs = interleaved(benchmark, jobs, "bestfit", bench.rounds)
        meta = json.loads((out / "bestfit.meta.json").read_text())
    finally:
        shutil.rmtree(out)
    counts = meta["counts"]
    padding = counts["padded"] / counts["tokens_out"]
    fits = counts["documents"] - counts["documents_split"]  # documents of at most seq_len tokens with their eos
    fast, slow = series(runs["concat"], tokens), series(runs["bestfit"], tokens)
    relative = fast["median_s"] / slow["median_s"]
    for name, s in (("bestfit", slow), ("concat", fast)):
        report.add("end_to_end", stride=bench.seq_len, tokens=tokens, approach=f"fastpack {name}", **s)
    report.target(f"best-fit padding, {tokens / 1e6:.0f}M tokens, seq_len {bench.seq_len}", padding * 100, "< 1 %",
                  padding < PAD_TARGET)
    report.target("best-fit documents truncated", counts["documents_truncated"], "0", counts["documents_truncated"] == 0)
    report.target("best-fit throughput / concat's", relative, f">= {THROUGHPUT_TARGET}", relative >= THROUGHPUT_TARGET)
    benchmark.extra_info.update({"tokens": tokens, "padding": padding, "documents_whole": fits,
                                 "documents_split": counts["documents_split"], "bestfit": slow, "concat": fast,
                                 "throughput_vs_concat": relative,
                                 "paired_throughput_vs_concat": 1 / paired_speedup(runs["concat"], runs["bestfit"])})
    assert padding < PAD_TARGET and counts["documents_truncated"] == 0
