"""Fault injection for the reliability tests: `FASTPACK_FAULT=ACTION[:GLOB]` in the environment.

Every write in fastpack ends in one rename of a complete temp onto its final name
(`atomic.commit`); right before it, when the final name matches GLOB (default `*`):

    pause    print `fault: paused before NAME (pid N)` on stderr and sleep, so a test can `kill -9`
             the process with its temp complete on disk
    enospc   raise OSError(ENOSPC) naming the file, as a full disk would
    eacces   raise OSError(EACCES) naming the file, as a read-only folder would

Unset (always, outside tests) it costs one environment lookup per written file.
"""
from __future__ import annotations

import errno
import fnmatch
import os
import sys
import time
from pathlib import Path

ENV = "FASTPACK_FAULT"
_ERRORS = {"enospc": errno.ENOSPC, "eacces": errno.EACCES}


def before_commit(final: Path) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    action, _, pattern = spec.partition(":")
    if not fnmatch.fnmatch(Path(final).name, pattern or "*"):
        return
    if action == "pause":
        print(f"fault: paused before {final} (pid {os.getpid()})", file=sys.stderr, flush=True)
        time.sleep(3600)
    elif action in _ERRORS:
        code = _ERRORS[action]
        raise OSError(code, os.strerror(code), str(final))
