"""`dataset-metadata.json` for `kaggle datasets create|version -p kaggle_bundle --dir-mode zip`.

    {"id": "owner/slug", "title": "...", "licenses": [{"name": "CC0-1.0"}]}

Checked before writing against the Kaggle CLI's own rules (`dataset_create_new`): id of the form
OWNER/SLUG, slug and title 6-50 characters and not the `kaggle datasets init` placeholders,
exactly one license. Two checks go beyond the CLI because the server refuses what they catch
only after the upload: the slug holds only letters, digits and hyphens, and the license is one
of the names Kaggle documents (matched case-insensitively, written in Kaggle's spelling).
"""
from __future__ import annotations

import re
from typing import Any, Optional

from fastpack.errors import UserError

# docs/datasets_metadata.md of the Kaggle API: the license names `licenses[0].name` may take.
KAGGLE_LICENSES = (
    "CC0-1.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "CC-BY-NC-SA-4.0", "GPL-2.0", "ODbL-1.0", "DbCL-1.0",
    "copyright-authors", "other", "unknown", "CC-BY-4.0", "CC-BY-NC-4.0", "PDDL", "CC-BY-3.0",
    "CC-BY-3.0-IGO", "US-Government-Works", "CC-BY-NC-SA-3.0-IGO", "CDLA-Permissive-1.0",
    "CDLA-Sharing-1.0", "CC-BY-ND-4.0", "CC-BY-NC-ND-4.0", "ODC-BY-1.0", "LGPL-3.0", "AGPL-3.0",
    "FDL-1.3", "EU-ODP-Legal-Notice", "apache-2.0", "GPL-3.0",
)
_SLUG = re.compile(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*")
_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def dataset_metadata(kaggle_id: str, title: Optional[str], license_name: Optional[str]) -> dict[str, Any]:
    """The metadata dict for `--kaggle-id` (title defaults to the slug); a UserError naming the rule."""
    if not license_name:
        raise UserError("--kaggle-id needs --license (one of: " + ", ".join(KAGGLE_LICENSES) + "); pick the "
                        "one your corpus allows: `copyright-authors` or `unknown` if you are not sure")
    slug = kaggle_id.partition("/")[2]
    meta = {"id": kaggle_id, "title": title if title is not None else slug,
            "licenses": [{"name": _canonical_license(license_name)}]}
    validate_metadata(meta)
    return meta


def validate_metadata(meta: Any) -> None:
    """Raise a UserError for what `kaggle datasets create` (or the server right after) would refuse."""
    if not isinstance(meta, dict):
        raise UserError("dataset metadata must be a JSON object")
    ref, title, licenses = meta.get("id"), meta.get("title"), meta.get("licenses")
    if not isinstance(ref, str) or ref.count("/") != 1:
        raise UserError(f"--kaggle-id must be OWNER/SLUG, got {ref!r}")
    owner, slug = ref.split("/")
    if not _OWNER.fullmatch(owner):
        raise UserError(f"--kaggle-id {ref!r}: the owner must be your Kaggle username (letters, digits, '-', '_')")
    if slug == "INSERT_SLUG_HERE":
        raise UserError("--kaggle-id: placeholder slug INSERT_SLUG_HERE; choose the dataset's slug")
    if not 6 <= len(slug) <= 50:
        raise UserError(f"--kaggle-id {ref!r}: the dataset slug must be between 6 and 50 characters, "
                        f"got {len(slug)}")
    if not _SLUG.fullmatch(slug):
        raise UserError(f"--kaggle-id {ref!r}: the slug may hold only letters, digits and single hyphens "
                        f"(it becomes the dataset's URL)")
    if not isinstance(title, str) or title == "INSERT_TITLE_HERE":
        raise UserError(f"--title: a dataset title is required, got {title!r}")
    if not 6 <= len(title) <= 50:
        raise UserError(f"--title {title!r}: the dataset title must be between 6 and 50 characters, got {len(title)}")
    if not isinstance(licenses, list) or len(licenses) != 1:
        raise UserError("dataset metadata: specify exactly one license")
    name = licenses[0].get("name") if isinstance(licenses[0], dict) else None
    if not isinstance(name, str) or name not in KAGGLE_LICENSES:
        raise UserError(f"--license {name!r} is not a Kaggle license name (known: {', '.join(KAGGLE_LICENSES)})")


def _canonical_license(name: str) -> str:
    by_lower = {known.lower(): known for known in KAGGLE_LICENSES}
    return by_lower.get(name.strip().lower(), name)
