"""bundle: gather a data root's artifacts into the folder (and zip) to upload to Kaggle, and verify it.

`python -m bundle --root DIR --out kaggle_bundle [--zip] ...` builds; `python -m bundle verify DIR
[--full]` checks. The Kaggle runner calls `check_bundle(root, full=...)` (raises a UserError naming
the bad files) or `verify_bundle` (the full report), and finds bundles with `find_bundle_roots`.
`import bundle` stays light: names load on first use.
"""
from fastpack.lazy import lazy_attributes

__all__ = [
    "MANIFEST_NAME",
    "BundleOptions",
    "build_bundle",
    "verify_bundle",
    "check_bundle",
    "VerifyReport",
    "Manifest",
    "read_manifest",
    "find_bundle_roots",
]

_LAZY = {
    "MANIFEST_NAME": "bundle.layout",
    "BundleOptions": "bundle.build",
    "build_bundle": "bundle.build",
    "verify_bundle": "bundle.verify",
    "check_bundle": "bundle.verify",
    "VerifyReport": "bundle.verify",
    "Manifest": "bundle.manifest",
    "read_manifest": "bundle.manifest",
    "find_bundle_roots": "bundle.manifest",
}


__getattr__ = lazy_attributes(__name__, _LAZY)
