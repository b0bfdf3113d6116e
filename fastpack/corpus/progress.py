"""Progress bars on stderr (tqdm), shown when asked or when stderr is a terminal."""
from __future__ import annotations

import sys
from typing import Optional


def show_progress_default(value: Optional[bool]) -> bool:
    return sys.stderr.isatty() if value is None else value


def byte_bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                disable=not enabled, file=sys.stderr, leave=False, dynamic_ncols=True)
