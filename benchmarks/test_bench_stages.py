"""The packer's stages alone, in process, on the main corpus: read -> window -> write.

- reader: `JsonlReader` (bytes -> documents, numba scanner) on 1 thread and on all; beside it
  the floor, reading the file's bytes into a reused buffer the way the reader does;
- windower: documents already in memory -> rows, into a sink that keeps nothing (concat at
  stride = seq_len and seq_len/2, document mode);
- writer: rows -> .npy, `NpyWriter` and `BackgroundWriter`, from a reused chunk.
Mtok/s counts input tokens (separators excluded), as end to end.
"""
from __future__ import annotations

import statistics

import numpy as np
import pytest

from benchmarks.measure import settle, timed_rounds


def _stage(report, benchmark, name, tokens, seconds, nbytes=None, **more):
    med = statistics.median(seconds)
    row = {"stage": name, "tokens": tokens, "median_s": med, "min_s": min(seconds), "max_s": max(seconds),
           "rounds": len(seconds), "mtok_s": tokens / med / 1e6 if med else None,
           "mb_s": nbytes / med / 1e6 if nbytes and med else None, **more}
    report.add("stages", **row)
    benchmark.extra_info.update(row)


# -- reader --------------------------------------------------------------------------------------

def test_read_bytes(benchmark, bench, report, corpus):
    """The floor under the reader: the file's bytes into one reused block buffer (warm page cache)."""
    from fastpack.readers import BLOCK_BYTES

    buf = bytearray(BLOCK_BYTES)
    view = memoryview(buf)

    def read():
        with open(corpus["path"], "rb", buffering=0) as f:
            while f.readinto(view):
                pass

    read()
    benchmark.group = "stage: reader"
    seconds = timed_rounds(benchmark, read, bench.stage_rounds)
    _stage(report, benchmark, "read bytes (16 MB blocks)", corpus["tokens"], seconds, corpus["bytes"])


@pytest.mark.parametrize("threads", ["1", "all"], ids=["threads=1", "threads=all"])
def test_reader(benchmark, bench, report, corpus, threads):
    """JsonlReader with an eos after each document, as `pack_sequences` drives it."""
    import numba

    from fastpack.readers import DEFAULT_FIELDS, BadLines, IdLimits, JsonlReader, Separators

    n = 1 if threads == "1" else numba.config.NUMBA_NUM_THREADS
    got = []

    def read():
        total = 0
        for batch in JsonlReader(corpus["path"], fields=DEFAULT_FIELDS, limits=IdLimits(), bad=BadLines(),
                                 separators=Separators(eos=0)):
            total += batch.values.size
        got.append(total)

    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        read()  # kernels loaded, file in the page cache
        benchmark.group = "stage: reader"
        seconds = timed_rounds(benchmark, read, bench.stage_rounds)
    finally:
        numba.set_num_threads(before)
    _stage(report, benchmark, f"reader JsonlReader, {n} thread{'s' * (n > 1)}", corpus["tokens"], seconds,
           corpus["bytes"], threads=n)
    assert set(got) == {corpus["tokens"] + corpus["documents"]}


# -- windower ------------------------------------------------------------------------------------

class NullSink:
    """Counts what it is given and keeps nothing: the windower's own cost."""

    def __init__(self) -> None:
        self.tokens = 0

    def write(self, tokens: np.ndarray) -> None:
        self.tokens += tokens.size

    def truncate(self, n_tokens: int) -> None:
        self.tokens = n_tokens


@pytest.fixture(scope="module")
def stream_batches(corpus):
    """The main corpus as the reader hands it to the windower: (values with eos, offsets) per part."""
    from fastpack.readers import DEFAULT_FIELDS, BadLines, IdLimits, JsonlReader, Separators

    return [(b.values.copy(), b.offsets.copy())
            for b in JsonlReader(corpus["path"], fields=DEFAULT_FIELDS, limits=IdLimits(), bad=BadLines(),
                                 separators=Separators(eos=0))]


@pytest.mark.parametrize("mode,half", [("concat", False), ("concat", True), ("document", False)],
                         ids=["concat-stride=seq_len", "concat-stride=seq_len/2", "document-stride=seq_len"])
def test_windower(benchmark, bench, report, corpus, stream_batches, mode, half):
    from fastpack.spec import PackSpec

    stride = bench.strides[half]
    params = PackSpec(seq_len=bench.seq_len, stride=stride, mode=mode, eos_id=0, pad_id=0)
    out_tokens = []

    def window():
        sink = NullSink()
        w = params.windower(sink)
        for values, offsets in stream_batches:
            w.feed(values, offsets)
        w.finish()
        out_tokens.append(sink.tokens)

    window()
    benchmark.group = "stage: windower"
    seconds = timed_rounds(benchmark, window, bench.stage_rounds)
    _stage(report, benchmark, f"windower {mode} {bench.seq_len}/{stride}", corpus["tokens"], seconds,
           out_tokens[-1] * 4, mode=mode, stride=stride, rows=out_tokens[-1] // bench.seq_len)


# -- writer --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["NpyWriter", "BackgroundWriter"])
def test_writer(benchmark, bench, report, corpus, scratch, kind):
    """Rows -> .npy in the page cache (dirty pages flushed between rounds, untimed)."""
    from fastpack.windows import CHUNK_TOKENS
    from fastpack.writers import BackgroundWriter, NpyWriter

    seq_len = bench.seq_len
    chunk = (np.arange(max(CHUNK_TOKENS // seq_len, 1) * seq_len, dtype=np.int64) % 32000).astype(np.int32)
    total = corpus["tokens"] // seq_len * seq_len
    path = scratch / f"writer-{kind}.npy"

    def write():
        w = NpyWriter(path, seq_len, np.int32)
        if kind == "BackgroundWriter":
            w = BackgroundWriter(w)
        left = total
        while left:
            k = min(left, chunk.size)
            w.write(chunk[:k])
            left -= k
        assert w.close() == total // seq_len

    benchmark.group = "stage: writer"
    try:
        seconds = timed_rounds(benchmark, write, bench.stage_rounds, setup=lambda: settle(path))
    finally:
        path.unlink(missing_ok=True)
    _stage(report, benchmark, f"writer {kind} (4M-token chunks)", total, seconds, total * 4)
