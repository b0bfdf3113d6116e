"""pytest plumbing for the benchmark suite: `pytest benchmarks/ --benchmark` (skipped without the flag).

Options (all under "fastpack benchmarks" in `pytest --help`): sizes, rounds, which baselines,
where the generated corpora are cached. Fixtures give the synthetic corpora (generated once,
deterministic, reused between runs), a scratch folder for outputs, and the session's `Report`,
printed as tables at the end and saved as JSON (also inside `--benchmark-json`).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR.parent) not in sys.path:  # `pytest` (not `python -m pytest`) with --import-mode=importlib
    sys.path.insert(0, str(BENCH_DIR.parent))

from benchmarks.datagen import cached_corpus, parse_count  # noqa: E402
from benchmarks.measure import fmt_tokens  # noqa: E402
from benchmarks.report import Report  # noqa: E402

_REPORT = pytest.StashKey[Report]()
BASELINE_NAMES = ("orjson_numpy", "pyarrow_json", "naive_json_lists")


def pytest_addoption(parser):
    g = parser.getgroup("fastpack benchmarks")
    g.addoption("--benchmark", action="store_true", default=False,
                help="run the benchmarks in benchmarks/ (without it they are skipped)")
    g.addoption("--bench-tokens", default="30M", metavar="N",
                help="tokens in the main corpus: end to end, stages, RSS (default 30M; the acceptance run uses 100M)")
    g.addoption("--bench-small-tokens", default="10M", metavar="N",
                help="tokens in the small corpus: the naive baseline and the RSS-vs-size check (default 10M)")
    g.addoption("--bench-seq-len", type=int, default=1024, metavar="N",
                help="seq_len; strides seq_len and seq_len/2 (default 1024)")
    g.addoption("--bench-rounds", type=int, default=5, metavar="N",
                help="interleaved rounds per whole-process comparison (default 5)")
    g.addoption("--bench-stage-rounds", type=int, default=5, metavar="N", help="rounds per in-process stage (default 5)")
    g.addoption("--bench-compile-rounds", type=int, default=1, metavar="N",
                help="cold-cache (compiling) runs to time (default 1)")
    g.addoption("--bench-baselines", default=",".join(BASELINE_NAMES), metavar="A,B",
                help=f"baselines to compare with (default {','.join(BASELINE_NAMES)}; naive_json_lists "
                     "runs on the small corpus)")
    g.addoption("--bench-data-dir", default=os.path.join(tempfile.gettempdir(), "fastpack-bench"), metavar="DIR",
                help="where generated corpora are cached between runs (default: $TMPDIR/fastpack-bench)")
    g.addoption("--bench-results", default=None, metavar="PATH",
                help="the results JSON (default: DATA_DIR/results-<time>.json)")
    g.addoption("--device", default="cpu", metavar="DEV",
                help="training benchmark (-k train): cpu (scaled-down shapes) or cuda / cuda:N (small and base at seq_len 1024)")
    g.addoption("--bench-train-precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                help="training benchmark precision (default auto: bf16 on cc >= 8.0, fp16 + GradScaler below, fp32 on CPU)")
    g.addoption("--bench-train-steps", type=int, default=None, metavar="N",
                help="optimizer steps timed per variant per round (default 20 on cuda, 1 on cpu: variants alternate step by step)")
    g.addoption("--bench-train-rounds", type=int, default=None, metavar="N",
                help="interleaved rounds of the training benchmark (default 5 on cuda, 25 on cpu)")
    g.addoption("--bench-train-batch", type=int, default=None, metavar="N",
                help="micro-batch of the training benchmark (default: 16 small / 8 base on cuda, 4 / 2 on cpu)")
    g.addoption("--bench-train-compile", action="store_true", default=False,
                help="also run compile on vs off on CPU (always on cuda)")


@dataclass(frozen=True)
class BenchConfig:
    seq_len: int
    tokens: int
    small_tokens: int
    rounds: int
    stage_rounds: int
    compile_rounds: int
    baselines: tuple[str, ...]
    data_dir: Path

    @property
    def strides(self) -> tuple[int, int]:
        return self.seq_len, max(1, self.seq_len // 2)

    @classmethod
    def from_config(cls, config) -> "BenchConfig":
        names = tuple(n for n in config.getoption("--bench-baselines").split(",") if n)
        unknown = set(names) - set(BASELINE_NAMES)
        if unknown:
            raise pytest.UsageError(f"--bench-baselines: unknown {', '.join(sorted(unknown))} "
                                    f"(choose from {', '.join(BASELINE_NAMES)})")
        rounds = [config.getoption(o) for o in ("--bench-rounds", "--bench-stage-rounds", "--bench-compile-rounds")]
        if min(rounds) < 1:
            raise pytest.UsageError("--bench-*-rounds must be >= 1")
        try:
            tokens, small = parse_count(config.getoption("--bench-tokens")), parse_count(config.getoption("--bench-small-tokens"))
        except ValueError as exc:
            raise pytest.UsageError(f"--bench-tokens / --bench-small-tokens: {exc}") from None
        return cls(seq_len=config.getoption("--bench-seq-len"), tokens=tokens, small_tokens=small,
                   rounds=rounds[0], stage_rounds=rounds[1], compile_rounds=rounds[2], baselines=names,
                   data_dir=Path(config.getoption("--bench-data-dir")))


def pytest_configure(config):
    if not config.getoption("--benchmark"):
        return
    b = BenchConfig.from_config(config)
    config.stash[_REPORT] = Report({
        "seq_len": b.seq_len, "strides": list(b.strides), "tokens": b.tokens, "small_tokens": b.small_tokens,
        "rounds": b.rounds, "stage_rounds": b.stage_rounds, "compile_rounds": b.compile_rounds,
        "baselines": list(b.baselines), "data_dir": str(b.data_dir), "eos_id": 0, "corpora": {},
        "argv": sys.argv,
    })


def pytest_collection_modifyitems(config, items):
    if config.getoption("--benchmark"):
        return
    skip = pytest.mark.skip(reason="benchmark: run with `pytest benchmarks/ --benchmark`")
    for item in items:
        if BENCH_DIR in Path(item.path).parents:
            item.add_marker(skip)


# -- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def bench(pytestconfig) -> BenchConfig:
    return BenchConfig.from_config(pytestconfig)


@dataclass(frozen=True)
class TrainBench:
    """Options of the training benchmark (test_bench_train.py)."""

    device: "object"  # torch.device
    precision: str
    steps: int
    rounds: int
    warmup: int
    batch: int | None
    compile: bool


@pytest.fixture(scope="session")
def train_bench(pytestconfig, report) -> TrainBench:
    import torch

    device = torch.device(pytestconfig.getoption("--device"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError("--device cuda: no CUDA GPU visible")
    gpu = device.type == "cuda"
    if not gpu:
        torch.set_num_threads(1)  # one intra-op thread: CPU time is then the work done, and 2-core jitter stays low
    steps = pytestconfig.getoption("--bench-train-steps") or (20 if gpu else 1)
    rounds = pytestconfig.getoption("--bench-train-rounds") or (5 if gpu else 25)
    tb = TrainBench(device=device, precision=pytestconfig.getoption("--bench-train-precision"), steps=steps,
                    rounds=rounds, warmup=3 if gpu else 2, batch=pytestconfig.getoption("--bench-train-batch"),
                    compile=gpu or pytestconfig.getoption("--bench-train-compile"))
    report.params["train"] = {"device": str(device), "precision": tb.precision, "steps": steps, "rounds": rounds,
                              "warmup": tb.warmup, "batch": tb.batch, "compile": tb.compile,
                              "torch": torch.__version__, "threads": torch.get_num_threads()}
    return tb


@pytest.fixture(scope="session")
def report(pytestconfig) -> Report:
    return pytestconfig.stash[_REPORT]


def _corpus(bench: BenchConfig, report: Report, n_tokens: int, role: str) -> dict:
    started = time.perf_counter()
    info = cached_corpus(bench.data_dir, n_tokens)
    report.params["corpora"][role] = info
    took = time.perf_counter() - started
    if took > 1:
        print(f"\ngenerated {fmt_tokens(n_tokens)}-token corpus {info['path']} in {took:.0f} s")
    return info


@pytest.fixture(scope="session")
def corpus(bench, report) -> dict:
    """The main synthetic corpus (--bench-tokens): {path, tokens, documents, bytes, ...}."""
    return _corpus(bench, report, bench.tokens, "main")


@pytest.fixture(scope="session")
def small_corpus(bench, report) -> dict:
    """The small corpus (--bench-small-tokens)."""
    return _corpus(bench, report, bench.small_tokens, "small")


@pytest.fixture(scope="session")
def tiny_corpus(bench, report) -> dict:
    """100k tokens: for start-up and compile timings, where the work itself should not count."""
    return _corpus(bench, report, 100_000, "tiny")


@pytest.fixture(scope="session")
def scratch(tmp_path_factory) -> Path:
    """Outputs of the runs (removed by the tests that make big ones); also the children's cwd, so no
    config/training_config.json of the checkout is picked up."""
    return tmp_path_factory.mktemp("bench-out")


# -- the end of the session: JSON and the tables -------------------------------------------------

def _report_of(config) -> Report | None:
    report = config.stash.get(_REPORT, None)
    return None if report is None or report.empty else report


def pytest_sessionfinish(session, exitstatus):
    report = _report_of(session.config)
    if report is None:
        return
    path = session.config.getoption("--bench-results") or (
        Path(session.config.getoption("--bench-data-dir")) / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json")
    report.write_json(path)


def pytest_benchmark_update_json(config, benchmarks, output_json):
    report = _report_of(config)
    if report is not None:
        output_json["fastpack"] = report.to_dict()


def pytest_benchmark_update_machine_info(config, machine_info):
    from benchmarks.measure import hardware, versions

    machine_info["fastpack_hardware"] = hardware()
    machine_info["fastpack_versions"] = versions()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    report = _report_of(config)
    if report is None:
        return
    terminalreporter.write_sep("=", "fastpack benchmarks")
    for line in report.lines():
        terminalreporter.write_line(line)
