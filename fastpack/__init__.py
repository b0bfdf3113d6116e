"""fastpack: stream token JSONL (or Parquet/Arrow) into packed int32 windows with numba kernels.

`import fastpack` stays light: the packer (and numba) load on first use of its names.
"""
from fastpack._version import __version__

__all__ = ["__version__", "pack_sequences", "pack_arrays", "read_token_batches", "PackSummary"]

_LAZY = {
    "pack_sequences": "fastpack.pack",
    "pack_arrays": "fastpack.pack",
    "PackSummary": "fastpack.pack",
    "read_token_batches": "fastpack.readers",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fastpack' has no attribute {name!r}")
