"""dataset-metadata.json: the Kaggle CLI's rules, checked before anything is written."""
from __future__ import annotations

import json

import pytest

from fastpack.errors import UserError

from bundle.kaggle_meta import KAGGLE_LICENSES, dataset_metadata, validate_metadata


def test_valid_metadata_and_defaults():
    assert dataset_metadata("alice/vi-novels", None, "cc0-1.0") == \
        {"id": "alice/vi-novels", "title": "vi-novels", "licenses": [{"name": "CC0-1.0"}]}
    assert dataset_metadata("alice/novels-2024", "Vietnamese novels", "Apache-2.0")["licenses"] == \
        [{"name": "apache-2.0"}]  # Kaggle's own spelling
    validate_metadata({"id": "a/" + "x" * 50, "title": "t" * 6, "licenses": [{"name": "unknown"}]})


@pytest.mark.parametrize("kaggle_id, title, license_name, match", [
    ("alice/short", None, "CC0-1.0", "slug must be between 6 and 50 characters, got 5"),
    ("alice/" + "x" * 51, "A fine title", "CC0-1.0", "slug must be between 6 and 50 characters, got 51"),
    ("alice/vi-novels", "Short", "CC0-1.0", "title must be between 6 and 50 characters, got 5"),
    ("alice/vi-novels", "T" * 51, "CC0-1.0", "title must be between 6 and 50 characters, got 51"),
    ("vi-novels", "A fine title", "CC0-1.0", "must be OWNER/SLUG"),
    ("alice/vi/novels", "A fine title", "CC0-1.0", "must be OWNER/SLUG"),
    ("/vi-novels", "A fine title", "CC0-1.0", "owner must be your Kaggle username"),
    ("alice/vi novels!", "A fine title", "CC0-1.0", "letters, digits and single hyphens"),
    ("alice/INSERT_SLUG_HERE", "A fine title", "CC0-1.0", "placeholder"),
    ("alice/vi-novels", "INSERT_TITLE_HERE", "CC0-1.0", "title is required"),
    ("alice/vi-novels", "A fine title", "MIT-ish", "not a Kaggle license name"),
    ("alice/vi-novels", "A fine title", None, "needs --license"),
])
def test_rule_violations_are_named(kaggle_id, title, license_name, match):
    with pytest.raises(UserError, match=match):
        dataset_metadata(kaggle_id, title, license_name)


def test_exactly_one_license():
    for licenses in ([], [{"name": "CC0-1.0"}, {"name": "other"}], "CC0-1.0"):
        with pytest.raises(UserError, match="exactly one license"):
            validate_metadata({"id": "alice/vi-novels", "title": "A fine title", "licenses": licenses})


def test_license_list_has_no_duplicates():
    assert len({name.lower() for name in KAGGLE_LICENSES}) == len(KAGGLE_LICENSES)


def test_build_writes_the_metadata_beside_the_manifest(kit, root, tmp_path):
    kit.build(root, tmp_path / "b", kaggle_id="alice/vi-novels", title="Vietnamese novels", license="other")
    raw = (tmp_path / "b/dataset-metadata.json").read_text()
    assert json.loads(raw) == {"id": "alice/vi-novels", "title": "Vietnamese novels",
                               "licenses": [{"name": "other"}]}
    assert raw.index('"id"') < raw.index('"licenses"') < raw.index('"title"')  # sorted keys


def test_bad_metadata_writes_nothing(kit, root, tmp_path):
    with pytest.raises(UserError, match="slug"):
        kit.build(root, tmp_path / "b", kaggle_id="alice/tiny", license="CC0-1.0")
    with pytest.raises(UserError, match="pass them with --kaggle-id"):
        kit.build(root, tmp_path / "b", title="A fine title")
    assert not (tmp_path / "b").exists()
