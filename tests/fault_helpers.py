"""Run a command as a user does, stop it at a chosen point (FASTPACK_FAULT=pause:NAME) and kill -9 it."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

TEMP_RE = re.compile(r"^\..+\.tmp-\d+-[0-9a-f]{8}$")


def env_with(**extra: str) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("FASTPACK_FAULT", None)
    env.update(extra)
    return env


def run(module: str, *args, fault: str | None = None, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = env_with(**({"FASTPACK_FAULT": fault} if fault else {}))
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def start_paused(module: str, *args, fault: str, cwd=None, timeout: float = 120) -> subprocess.Popen:
    """Start the command and return once it reports the pause (its temps are complete on disk)."""
    proc = subprocess.Popen([sys.executable, "-m", module, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, env=env_with(FASTPACK_FAULT=fault))
    seen = []
    for line in proc.stderr:  # blocks until the pause line (or the process ends)
        seen.append(line)
        if line.startswith("fault: paused before"):
            return proc
    proc.wait(timeout)
    raise AssertionError(f"never paused (exit {proc.returncode}):\n{''.join(seen)}\n{proc.stdout.read()}")


def kill9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    proc.stdout.close()
    proc.stderr.close()


def temps_under(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob(".*") if TEMP_RE.match(p.name))


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]
