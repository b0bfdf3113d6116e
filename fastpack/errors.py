"""User errors: bad input or arguments, reported as one line and exit code 2, never a traceback.

`run_main` is every command's entry: a UserError, and the OS errors a user can fix (a full disk,
a folder they may not write), become one line on stderr and exit 2; anything else is a bug and
keeps its traceback.
"""
from __future__ import annotations

import errno
import os
import shutil
import sys
from typing import Callable, Optional, Sequence

EXIT_USER_ERROR = 2
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NOT_ALLOWED = {errno.EACCES, errno.EPERM, errno.EROFS}


class UserError(Exception):
    """A problem the user can fix (a file, a line, an argument). Its message is the whole report."""


def free_space(path: str | os.PathLike) -> Optional[int]:
    """Free bytes on the file system holding `path` (its nearest existing parent)."""
    current = os.path.abspath(path)
    while True:
        try:
            return shutil.disk_usage(current).free
        except OSError:
            parent = os.path.dirname(current)
            if parent == current:
                return None
            current = parent


def describe_os_error(exc: OSError) -> Optional[str]:
    """One line for an OS error a user can act on; None for the others (bugs keep their traceback)."""
    path = exc.filename if exc.filename is not None else "(the file was not named)"
    if exc.errno in _DISK_FULL:
        free = free_space(exc.filename) if exc.filename is not None else None
        left = f"; {free / 1e6:,.1f} MB free there" if free is not None else ""
        return f"disk full writing {path}{left}: free some space or write elsewhere"
    if exc.errno in _NOT_ALLOWED:
        return f"{path}: {exc.strerror or 'not permitted'}: choose a folder you can write, or fix its permissions"
    return None


def run_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a CLI body; a UserError or a user-fixable OS error becomes `error: ...` and exit 2."""
    try:
        return int(main(argv) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        message = describe_os_error(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
