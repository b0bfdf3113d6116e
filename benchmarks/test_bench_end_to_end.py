"""End to end, whole processes: `python -m fastpack` against the baselines, at stride = seq_len and seq_len/2.

Every approach runs as its own process (start-up, read, parse, window, `.npy` written), is
run `--bench-rounds` times, interleaved in an order rotated each round (after one untimed
fastpack run to warm the page cache), and its last output is checked equal to fastpack's. pytest-benchmark times fastpack; the baselines' timings, Mtok/s, peak
RSS and fastpack's speed-up go into `extra_info` and the session's report.
"""
from __future__ import annotations

import shutil

import pytest

from benchmarks.measure import Job, baseline_argv, child_env, fastpack_argv, interleaved, paired_speedup, same_npy, series

SPEEDUP_TARGET = 3.0  # issue 3: >= 3x the orjson + numpy baseline, end to end, on 100M tokens


def _compare(benchmark, bench, report, scratch, corpus, stride, baselines, label):
    tokens = corpus["tokens"]
    out = scratch / f"e2e-{label}-{stride}"
    out.mkdir(exist_ok=True)
    env = child_env()
    common = dict(seq_len=bench.seq_len, stride=stride)
    jobs = {"fastpack": Job(fastpack_argv(corpus["path"], out / "fastpack.npy", **common), out / "fastpack.npy",
                            out, env)}
    for name in baselines:
        jobs[name] = Job(baseline_argv(name, corpus["path"], out / f"{name}.npy", **common), out / f"{name}.npy", out, env)
    try:
        jobs["fastpack"].run()  # warm-up, untimed: kernels loaded from the cache, the input in the page cache
        runs = interleaved(benchmark, jobs, "fastpack", bench.rounds)
        # every output is left by its job's last run; compare them (memory-mapped) with fastpack's
        differ = [d for name in baselines if (d := same_npy(jobs["fastpack"].output, jobs[name].output))]
    finally:
        shutil.rmtree(out)  # outputs and their meta
    fast = series(runs["fastpack"], tokens)
    extra = {"tokens": tokens, "stride": stride, "seq_len": bench.seq_len, "bytes": corpus["bytes"],
             "fastpack": fast}
    report.add("end_to_end", stride=stride, tokens=tokens, approach="fastpack", **fast)
    for name in baselines:
        s = series(runs[name], tokens)
        s["speedup"] = s["median_s"] / fast["median_s"]
        s["paired_speedup"] = paired_speedup(runs["fastpack"], runs[name])
        s["equal_output"] = not any(d.startswith(f"{name}.npy") for d in differ)
        extra[name] = s
        report.add("end_to_end", stride=stride, tokens=tokens, approach=name, **s)
        if name == "orjson_numpy":
            report.target(f"speed-up vs orjson_numpy, stride {stride}, {tokens / 1e6:.0f}M tokens", s["speedup"],
                          f">= {SPEEDUP_TARGET:.0f}x on 100M tokens", s["speedup"] >= SPEEDUP_TARGET)
    benchmark.extra_info.update(extra)
    assert not differ, "outputs differ from fastpack's: " + "; ".join(differ)


@pytest.fixture(params=["stride=seq_len", "stride=seq_len/2"])
def stride(request, bench):
    return bench.strides[request.param != "stride=seq_len"]


def test_end_to_end(benchmark, bench, report, scratch, corpus, stride):
    """fastpack vs orjson_numpy and pyarrow_json on the main corpus."""
    baselines = [b for b in bench.baselines if b != "naive_json_lists"]
    benchmark.group = f"end to end, {corpus['tokens'] / 1e6:g}M tokens"
    _compare(benchmark, bench, report, scratch, corpus, stride, baselines, "main")


def test_end_to_end_naive(benchmark, bench, report, scratch, small_corpus, stride):
    """fastpack vs json + Python lists, on the small corpus (the naive packer needs ~50 bytes of RAM a token)."""
    if "naive_json_lists" not in bench.baselines:
        pytest.skip("naive_json_lists not in --bench-baselines")
    benchmark.group = f"end to end, {small_corpus['tokens'] / 1e6:g}M tokens"
    _compare(benchmark, bench, report, scratch, small_corpus, stride, ["naive_json_lists"], "small")
