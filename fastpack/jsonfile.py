"""Reading the project's small JSON files (config, meta, tokenizer info, manifests) with one-line errors."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastpack.errors import UserError


def read_json(path: str | Path, not_found: str) -> Any:
    """The file's JSON; a UserError naming it when it is missing (`{path}: {not_found}`) or malformed."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: {not_found}") from None
    except IsADirectoryError:
        raise UserError(f"{path}: a folder, expected a JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
