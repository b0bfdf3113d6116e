"""Peak RSS of `python -m fastpack` must stay flat: the small and the main corpus, interleaved.

Issue 3's targets: <= 256 MB, and not growing with the input (main <= 1.25 x small + slack).
"""
from __future__ import annotations

import shutil

import pytest

from benchmarks.measure import Job, child_env, fastpack_argv, interleaved, series

RSS_LIMIT_MB = 256
GROWTH = 1.25
SLACK_MB = 16  # allocator and page-table noise between two runs of the same program


@pytest.mark.parametrize("half", [False, True], ids=["stride=seq_len", "stride=seq_len/2"])
def test_peak_rss_flat(benchmark, bench, report, scratch, corpus, small_corpus, half):
    stride = bench.strides[half]
    out = scratch / f"rss-{stride}"
    out.mkdir(exist_ok=True)
    env = child_env()
    jobs = {size: Job(fastpack_argv(c["path"], out / f"{size}.npy", seq_len=bench.seq_len, stride=stride),
                      out / f"{size}.npy", out, env)
            for size, c in (("small", small_corpus), ("large", corpus))}
    benchmark.group = "peak RSS vs input size"
    try:
        jobs["large"].run()  # warm-up, untimed
        runs = interleaved(benchmark, jobs, "large", min(bench.rounds, 3))
    finally:
        shutil.rmtree(out)  # outputs and their meta
    small, large = series(runs["small"], small_corpus["tokens"]), series(runs["large"], corpus["tokens"])
    row = dict(stride=stride, small_tokens=small_corpus["tokens"], large_tokens=corpus["tokens"],
               small_rss_mb=small["peak_rss_mb"], large_rss_mb=large["peak_rss_mb"], small_mtok_s=small["mtok_s"],
               large_mtok_s=large["mtok_s"], limit_mb=RSS_LIMIT_MB, slack_mb=SLACK_MB,
               small_rss_runs_mb=[r.peak_rss_mb for r in runs["small"]],
               large_rss_runs_mb=[r.peak_rss_mb for r in runs["large"]])
    report.add("memory", **row)
    benchmark.extra_info.update(row)
    ceiling = GROWTH * small["peak_rss_mb"] + SLACK_MB
    report.target(f"peak RSS, {corpus['tokens'] / 1e6:g}M tokens, stride {stride} (MB)", large["peak_rss_mb"],
                  f"<= {RSS_LIMIT_MB} MB", large["peak_rss_mb"] <= RSS_LIMIT_MB)
    report.target(f"peak RSS growth {small_corpus['tokens'] / 1e6:g}M -> {corpus['tokens'] / 1e6:g}M, stride {stride}"
                  " (MB)", large["peak_rss_mb"], f"<= {GROWTH} x {small['peak_rss_mb']:.0f} + {SLACK_MB} MB",
                  large["peak_rss_mb"] <= ceiling)
    assert large["peak_rss_mb"] <= RSS_LIMIT_MB and small["peak_rss_mb"] <= RSS_LIMIT_MB, \
        f"peak RSS {small['peak_rss_mb']:.0f} MB / {large['peak_rss_mb']:.0f} MB, over {RSS_LIMIT_MB} MB"
    assert large["peak_rss_mb"] <= ceiling, \
        f"peak RSS grows with the input: {small['peak_rss_mb']:.0f} MB -> {large['peak_rss_mb']:.0f} MB"
