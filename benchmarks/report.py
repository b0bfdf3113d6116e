"""The session's results: collected by the benchmarks, printed as tables at the end, saved as JSON.

JSON layout (`schema` fastpack-bench/1), also embedded under the key "fastpack" of
pytest-benchmark's `--benchmark-json` file:

    {"schema", "created", "params": {seq_len, strides, rounds, corpora: {...}, ...},
     "versions": {python, fastpack, numpy, numba, ...}, "hardware": {cpu_model, cpu_count, ram_gb, ...},
     "git": {commit, dirty}, "load": {other_cores, steal_s, loadavg_*, ...},
     "results": {"end_to_end": [...], "memory": [...], "startup": [...], "compile": [...], "stages": [...]},
     "targets": [{name, value, limit, met}], "notes": [...]}

Every row of "end_to_end" is one approach at one stride and size: median/min/max wall seconds,
every round's wall time, Mtok/s (input tokens / median wall), peak RSS MB (max over rounds),
and for baselines fastpack's speed-up (baseline median / fastpack median, and the median of the
per-round ratios).
"""
from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import orjson

from benchmarks.measure import LoadWindow, fmt_tokens, git_info, hardware, jsonable, versions

SCHEMA = "fastpack-bench/1"
BUSY_CORES = 0.25  # other processes using more than this (in cores) on average make timings suspect


class Report:
    def __init__(self, params: dict) -> None:
        self.params = params
        self.sections: dict[str, list[dict]] = defaultdict(list)
        self.targets: list[dict] = []
        self.notes: list[str] = []
        self.created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.load = LoadWindow.start()
        self._stopped = False
        self.json_path: Path | None = None

    def add(self, section: str, **row) -> None:
        self.sections[section].append(row)

    def target(self, name: str, value: float, limit: str, met: bool) -> None:
        self.targets.append({"name": name, "value": value, "limit": limit, "met": bool(met)})

    def stop(self) -> None:
        if not self._stopped:
            self.load.stop()
            self._stopped = True
            if self.load.other_cores > BUSY_CORES:
                self.notes.append(
                    f"machine busy: other processes used {self.load.other_cores:.2f} cores on average during the "
                    f"session (load average {self.load.loadavg_end[0]:.2f}); timings are noisy, compare ratios from "
                    f"interleaved rounds rather than absolute figures")
            if self.load.steal_s > 0.05 * self.load.wall_s:
                self.notes.append(f"hypervisor steal {self.load.steal_s:.1f} s over {self.load.wall_s:.0f} s")

    @property
    def empty(self) -> bool:
        return not self.sections

    def to_dict(self) -> dict:
        self.stop()
        return jsonable({
            "schema": SCHEMA, "created": self.created, "params": self.params, "versions": versions(),
            "hardware": hardware(), "git": git_info(), "load": self.load.to_dict(),
            "results": dict(self.sections), "targets": self.targets, "notes": self.notes,
        })

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        self.json_path = path
        return path

    # -- the tables -----------------------------------------------------------------------------
    def lines(self) -> list[str]:
        self.stop()
        out: list[str] = []
        hw, p = hardware(), self.params
        out.append(f"{hw.get('cpu_model')}, {hw.get('cpus_usable')} cores, {hw.get('ram_gb')} GB RAM; "
                   f"seq_len {p.get('seq_len')}; medians of interleaved rounds; Mtok/s = input tokens / wall s")
        out += self._end_to_end() + self._memory() + self._startup() + self._stages() + self._train()
        if self.targets:
            out.append("")
            out.append("targets:")
            for t in self.targets:
                out.append(f"  {'met   ' if t['met'] else 'MISSED'} {t['name']}: {t['value']:.3g} (target {t['limit']})")
        out.append("")
        out.append(f"machine load during the session: other processes {self.load.other_cores:.2f} cores on average, "
                   f"load average {self.load.loadavg_start[0]:.2f} -> {self.load.loadavg_end[0]:.2f}")
        out += [f"WARNING: {n}" for n in self.notes]
        if self.json_path:
            out.append(f"results JSON: {self.json_path}")
        return out

    def _end_to_end(self) -> list[str]:
        rows = self.sections.get("end_to_end")
        if not rows:
            return []
        out = ["", "end to end, whole process (start-up, read, parse, window, write .npy):",
               f"  {'stride':>6}  {'tokens':>6}  {'approach':<17} {'median s':>9} {'min-max s':>13} {'Mtok/s':>7} "
               f"{'peak RSS MB':>11} {'fastpack x':>10} {'paired x':>8} {'busy':>5}"]
        for r in rows:
            out.append(f"  {r['stride']:>6}  {fmt_tokens(r['tokens']):>6}  {r['approach']:<17} {r['median_s']:>9.2f} "
                       f"{r['min_s']:>6.2f}-{r['max_s']:<6.2f} {r['mtok_s']:>7.1f} {r['peak_rss_mb']:>11.0f} "
                       f"{_x(r.get('speedup')):>10} {_x(r.get('paired_speedup')):>8} {r['other_cores']:>5.2f}")
        out.append("  fastpack x: baseline median / fastpack median (same run); paired x: median of per-round ratios;"
                   " busy: other processes' cores during the runs")
        return out

    def _memory(self) -> list[str]:
        rows = self.sections.get("memory")
        if not rows:
            return []
        out = ["", "fastpack peak RSS vs input size (whole process, max over rounds):"]
        for r in rows:
            out.append(f"  stride {r['stride']:>5}: {fmt_tokens(r['small_tokens'])} tokens {r['small_rss_mb']:.0f} MB, "
                       f"{fmt_tokens(r['large_tokens'])} tokens {r['large_rss_mb']:.0f} MB "
                       f"(x{r['large_rss_mb'] / r['small_rss_mb']:.2f}; limits <= {r['limit_mb']:.0f} MB and "
                       f"<= 1.25 x small + {r['slack_mb']:.0f} MB)")
        return out

    def _startup(self) -> list[str]:
        out = []
        for r in self.sections.get("startup", []):
            if not out:
                out = ["", "start-up (whole process, median wall s, peak RSS MB):"]
            out.append(f"  {r['command']:<34} {r['median_s']:>6.3f} s  {r['peak_rss_mb']:>5.0f} MB"
                       + (f"  (heavy modules imported: {', '.join(r['heavy_modules']) or 'none'})"
                          if "heavy_modules" in r else ""))
        for r in self.sections.get("compile", []):
            out += ["", f"first run with an empty NUMBA_CACHE_DIR ({fmt_tokens(r['tokens'])} tokens): "
                        f"{r['compile_s']:.1f} s compiling kernels (reported by fastpack), {r['cold_wall_s']:.1f} s wall;"
                        f" next run {r['warm_wall_s']:.2f} s wall, compile reported {r['warm_compile_s']:.1f} s;"
                        f" cache files written there: {r['cache_files']}"]
        for r in self.sections.get("fresh_install", []):
            out += ["", f"fresh install of the bundle's wheel, empty NUMBA_CACHE_DIR: first run {r['compile_s']:.2f} s "
                        f"compiling kernels, {r['first_wall_s']:.2f} s wall; {fmt_tokens(r['tokens'])} tokens packed at "
                        f"{r['cold_rate_mtok_s']:.1f} M tokens/s cold vs {r['warm_rate_mtok_s']:.1f} warm (medians)"]
        return out

    def _stages(self) -> list[str]:
        rows = self.sections.get("stages")
        if not rows:
            return []
        out = ["", "stages, in process (median over rounds):",
               f"  {'stage':<42} {'tokens':>6} {'median s':>9} {'Mtok/s':>8} {'MB/s':>8}"]
        for r in rows:
            out.append(f"  {r['stage']:<42} {fmt_tokens(r['tokens']):>6} {r['median_s']:>9.3f} "
                       f"{_num(r.get('mtok_s')):>8} {_num(r.get('mb_s')):>8}")
        return out


    def _train(self) -> list[str]:
        rows = self.sections.get("train", [])
        if not rows and not self.sections.get("train_loss_memory"):
            return []
        out = ["", "training (same packed windows, same process; median over interleaved rounds):"]
        if rows:
            out.append(f"  {'shape':<10} {'group':<32} {'variant':<24} {'params':>7} {'step ms':>9} {'tok/s':>9} "
                       f"{'cpu ms':>8} {'MFU':>6} {'peak GB':>7} {'prec':>5}")
        for r in rows:
            mfu = "-" if r.get("mfu") is None else f"{100 * r['mfu']:.1f}%"
            mem = "-" if r.get("peak_mem_gb") is None else f"{r['peak_mem_gb']:.2f}"
            out.append(f"  {r['shape']:<10} {r['group']:<32} {r['variant']:<24} {r['params_m']:>6.2f}M "
                       f"{r['step_ms']:>9.1f} {r['tokens_per_s']:>9.0f} {r.get('cpu_ms', 0):>8.1f} {mfu:>6} {mem:>7} "
                       f"{r['precision']:>5}")
        for r in self.sections.get("train_ratios", []):
            params = f" (parameters {r['params']})" if r.get("params") else ""
            out.append(f"  {r['shape']}: {r['comparison']}: {r['median']:.3f}x (paired {r['paired']:.3f}x, "
                       f"best rounds {r['best']:.3f}x){params}")
        for r in self.sections.get("train_loss_memory", []):
            out.append(f"  loss memory, {r['rows']} tokens x vocab {r['vocab']} (d {r['d_model']}): {r['variant']}: "
                       f"{r['extra_mb']:.0f} MB above its inputs, {r['seconds']:.2f} s forward + backward")
        return out


def _x(v) -> str:
    return "-" if v is None else f"{v:.2f}x"


def _num(v) -> str:
    if v is None:
        return "-"
    return f"{v:.1f}" if isinstance(v, float) else str(v)
