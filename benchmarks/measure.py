"""Measuring helpers for the benchmark suite: whole processes, output equality, machine and load.

A whole-process run is timed from spawn to exit (`perf_counter`) and its peak RSS is the child's
own `ru_maxrss` from `os.wait4` (per child, not the running maximum of RUSAGE_CHILDREN), taken
by a small launcher process so that pytest's own size does not leak into it. Each run also records how much CPU *other* processes used meanwhile (from /proc/stat, minus the
child's and this process's CPU time): on a shared 2-core VM that is the noise to watch.
"""
from __future__ import annotations

import ast
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("numpy", "numba", "llvmlite", "pyarrow", "orjson", "torch", "pytest", "pytest-benchmark")
_COMPILE_RE = re.compile(r"\+ ([0-9.]+) s compiling kernels")
_PACK_RATE_RE = re.compile(r"([0-9.]+) M tokens/s packing")


# -- CPU accounting ------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_stat() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, from the first line of /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / _TICK, steal / _TICK


def _own_cpu() -> float:
    """CPU seconds of this process and of its children that were waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


@dataclass
class LoadWindow:
    """CPU used by processes other than this one (and its children) between start() and stop()."""

    wall_s: float = 0.0
    other_cpu_s: float = 0.0
    steal_s: float = 0.0
    loadavg_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    loadavg_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    _t0: float = field(default=0.0, repr=False)
    _busy0: float = field(default=0.0, repr=False)
    _steal0: float = field(default=0.0, repr=False)
    _own0: float = field(default=0.0, repr=False)

    @classmethod
    def start(cls) -> "LoadWindow":
        w = cls(loadavg_start=os.getloadavg())
        w._t0, (w._busy0, w._steal0), w._own0 = time.perf_counter(), _proc_stat(), _own_cpu()
        return w

    def stop(self) -> "LoadWindow":
        busy, steal = _proc_stat()
        self.wall_s = time.perf_counter() - self._t0
        self.other_cpu_s = max(0.0, busy - self._busy0 - (_own_cpu() - self._own0))
        self.steal_s = steal - self._steal0
        self.loadavg_end = os.getloadavg()
        return self

    @property
    def other_cores(self) -> float:
        """Average number of cores other processes kept busy (0 on a quiet machine)."""
        return self.other_cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {"wall_s": round(self.wall_s, 3), "other_cpu_s": round(self.other_cpu_s, 3),
                "other_cores": round(self.other_cores, 3), "steal_s": round(self.steal_s, 3),
                "loadavg_start": list(self.loadavg_start), "loadavg_end": list(self.loadavg_end)}


# -- whole processes -----------------------------------------------------------------------------

@dataclass
class ProcRun:
    """One finished child process."""

    argv: list[str]
    wall_s: float
    peak_rss_mb: float
    cpu_s: float  # the child's user + system time
    other_cores: float  # what other processes used meanwhile, in cores
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> "ProcRun":
        if self.returncode != 0:
            tail = (self.stderr or self.stdout)[-2000:]
            raise RuntimeError(f"exit {self.returncode}: {' '.join(self.argv)}\n{tail}")
        return self

    def compile_seconds(self) -> float:
        """fastpack's `+ X s compiling kernels` from its summary, or 0."""
        m = _COMPILE_RE.search(self.stdout)
        return float(m.group(1)) if m else 0.0

    def packing_rate(self) -> float:
        """fastpack's packing throughput (M tokens/s, the kernels' loading or compiling excluded) from its summary."""
        m = _PACK_RATE_RE.search(self.stdout)
        if not m:
            raise RuntimeError(f"no 'M tokens/s packing' in: {self.stdout[-500:]}")
        return float(m.group(1))


def child_env(**extra: str) -> dict[str, str]:
    """The environment for children: this one, with the repo root importable (for `-m benchmarks...`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(extra)
    return env


# The child is started by a tiny launcher process, not by this one: on Linux a child's ru_maxrss
# starts from the peak RSS of the process it was forked (or vforked) from, as exec records the
# old address space's high-water mark. pytest itself can be large (memory-mapped outputs being
# compared, in-process stages), so a direct child would inherit that figure. The launcher
# (`python -S`, ~9 MB) spawns the command, waits for it and writes its wall time and rusage.
_LAUNCHER = """\
import os, sys, time
t0 = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(sys.argv[1], "w") as f:
    f.write(repr((wall, ru.ru_maxrss, ru.ru_utime + ru.ru_stime, os.waitstatus_to_exitcode(status))))
"""


def run_process(argv: Sequence[str], *, cwd: str | os.PathLike | None = None, env: dict[str, str] | None = None,
                timeout: float | None = None) -> ProcRun:
    """Run argv to completion: wall time, the child's own peak RSS, its CPU time, others' CPU meanwhile."""
    import signal

    argv = [str(a) for a in argv]
    with tempfile.TemporaryDirectory(prefix="fastpack-run-") as tmp:
        result = Path(tmp) / "rusage"
        with open(Path(tmp) / "stdout", "w+b") as out, open(Path(tmp) / "stderr", "w+b") as err:
            busy0, _ = _proc_stat()
            own0 = _own_cpu()
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCHER, str(result), *argv], cwd=cwd, env=env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
            timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL)) if timeout else None
            if timer:
                timer.start()
            try:
                launcher_rc = proc.wait()
            finally:
                if timer:
                    timer.cancel()
            outer_wall = time.perf_counter() - t0
            busy1, _ = _proc_stat()
            # the launcher and the command are reaped, so _own_cpu() counts them: the rest of the busy time is others'
            other = max(0.0, (busy1 - busy0) - (_own_cpu() - own0))
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        if result.is_file():
            wall, maxrss_kb, cpu, rc = ast.literal_eval(result.read_text())
        else:  # the launcher failed (or was killed): report it as the command's failure
            wall, maxrss_kb, cpu, rc = outer_wall, 0, 0.0, launcher_rc or 1
        return ProcRun(argv, wall, maxrss_kb / 1024, cpu, other / outer_wall if outer_wall > 0 else 0.0, rc,
                       stdout, stderr)


def fastpack_argv(inp, out, *, seq_len: int, stride: int, eos_id: int = 0) -> list[str]:
    return [sys.executable, "-m", "fastpack", "--input", str(inp), "--output", str(out), "--seq-len", str(seq_len),
            "--stride", str(stride), "--eos-id", str(eos_id), "--force"]


def baseline_argv(name: str, inp, out, *, seq_len: int, stride: int, eos_id: int = 0) -> list[str]:
    return [sys.executable, "-m", "benchmarks.run_baseline", name, "--input", str(inp), "--output", str(out),
            "--seq-len", str(seq_len), "--stride", str(stride), "--eos-id", str(eos_id)]


def settle(*stale: Path) -> None:
    """Between timed runs: remove the previous outputs and flush dirty pages, so no run pays for another's."""
    for p in stale:
        Path(p).unlink(missing_ok=True)
    os.sync()


@dataclass
class Job:
    """A command to time; `output` is removed (and dirty pages flushed) before each run, untimed."""

    argv: list[str]
    output: Path | None = None
    cwd: Path | None = None
    env: dict[str, str] | None = None

    def prepare(self) -> None:
        settle(*([self.output] if self.output else []))

    def execute(self) -> ProcRun:
        return run_process(self.argv, cwd=self.cwd, env=self.env).check()

    def run(self) -> ProcRun:
        self.prepare()
        return self.execute()


def interleaved(benchmark, jobs: dict[str, Job], timed: str, rounds: int) -> dict[str, list[ProcRun]]:
    """Run every job once per round, in an order rotated each round; pytest-benchmark times `timed`.

    The other jobs run in pytest-benchmark's untimed setup (those before `timed` in the round's
    order) and teardown (those after), so all are interleaved and each is measured here too.
    Returns every job's runs, in round order.
    """
    names = list(jobs)
    runs: dict[str, list[ProcRun]] = {n: [] for n in names}
    state = {"round": 0, "after": []}

    def setup():
        k = state["round"] % len(names)
        state["round"] += 1
        order = names[k:] + names[:k]
        at = order.index(timed)
        state["after"] = order[at + 1:]
        for name in order[:at]:
            runs[name].append(jobs[name].run())
        jobs[timed].prepare()

    def target():
        runs[timed].append(jobs[timed].execute())

    def teardown():
        for name in state["after"]:
            runs[name].append(jobs[name].run())

    benchmark.pedantic(target, setup=setup, teardown=teardown, rounds=rounds, iterations=1)
    for name in names:  # --benchmark-disable runs one round without teardown: run the rest once
        if not runs[name]:
            runs[name].append(jobs[name].run())
    return runs


def timed_rounds(benchmark, fn, rounds: int, setup=None) -> list[float]:
    """benchmark.pedantic(fn) with each round's seconds also kept here (also when pytest-benchmark is disabled)."""
    seconds: list[float] = []

    def target():
        t0 = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t0)

    benchmark.pedantic(target, setup=setup, rounds=rounds, iterations=1)
    return seconds


# -- outputs -------------------------------------------------------------------------------------

def same_npy(a: str | os.PathLike, b: str | os.PathLike, chunk_rows: int = 4096) -> str | None:
    """None when the two .npy files hold the same array (memory-mapped, compared in chunks), else why not."""
    x, y = np.load(a, mmap_mode="r"), np.load(b, mmap_mode="r")
    if x.shape != y.shape or x.dtype != y.dtype:
        return f"{Path(b).name}: shape {y.shape} {y.dtype}, fastpack {x.shape} {x.dtype}"
    for r in range(0, x.shape[0], chunk_rows):
        if not np.array_equal(x[r:r + chunk_rows], y[r:r + chunk_rows]):
            bad = r + int(np.flatnonzero((x[r:r + chunk_rows] != y[r:r + chunk_rows]).any(axis=1))[0])
            return f"{Path(b).name}: row {bad} differs from fastpack's"
    return None


# -- statistics ----------------------------------------------------------------------------------

def series(runs: Sequence[ProcRun], tokens: int) -> dict:
    """Median-based summary of repeated runs of one command."""
    walls = [r.wall_s for r in runs]
    med = statistics.median(walls)
    return {
        "rounds": len(runs),
        "median_s": med, "min_s": min(walls), "max_s": max(walls), "walls_s": walls,
        "mtok_s": tokens / med / 1e6 if med > 0 else 0.0,
        "peak_rss_mb": max(r.peak_rss_mb for r in runs),
        "median_rss_mb": statistics.median(r.peak_rss_mb for r in runs),
        "cpu_s": statistics.median(r.cpu_s for r in runs),
        "other_cores": statistics.median(r.other_cores for r in runs),
    }


def paired_speedup(fast: Sequence[ProcRun], slow: Sequence[ProcRun]) -> float | None:
    """Median over rounds of slow/fast wall time: robust to drift when the runs were interleaved."""
    pairs = [s.wall_s / f.wall_s for f, s in zip(fast, slow) if f.wall_s > 0]
    return statistics.median(pairs) if pairs else None


# -- machine, versions, parameters ---------------------------------------------------------------

def versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    import fastpack

    out: dict[str, str | None] = {"python": platform.python_version(), "fastpack": fastpack.__version__}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def hardware() -> dict:
    info: dict = {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count()}
    try:
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["cpus_usable"] = os.cpu_count()
    try:
        text = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        info["cpu_model"] = m.group(1).strip() if m else None
        m = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
        flags = set(m.group(1).split()) if m else set()
        info["simd"] = sorted(f for f in ("sse4_2", "avx", "avx2", "avx512f", "avx512bw") if f in flags)
    except OSError:
        info["cpu_model"] = platform.processor() or None
    try:
        m = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        info["ram_gb"] = round(int(m.group(1)) / 2**20, 1) if m else None
    except OSError:
        info["ram_gb"] = None
    try:
        import numba

        info["numba_threads"] = numba.config.NUMBA_NUM_THREADS
    except ImportError:
        pass
    return info


def git_info() -> dict:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = git("status", "--porcelain", "--", "fastpack", "benchmarks")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def fmt_tokens(n: int) -> str:
    for unit, scale in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


def jsonable(obj):
    """Dataclasses, paths and numpy scalars -> plain JSON values."""
    if hasattr(obj, "__dataclass_fields__"):
        return jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float):
        return round(obj, 6)
    return obj
