"""fastpack: stream token JSONL (or Parquet/Arrow) into packed int32 windows with numba kernels.

`import fastpack` stays light: the packer (and numba) load on first use of its names.
"""
from fastpack._version import __version__
from fastpack.lazy import lazy_attributes

__all__ = ["__version__", "pack_sequences", "pack_arrays", "read_token_batches", "PackSpec", "PackSummary"]

_LAZY = {
    "pack_sequences": "fastpack.pack",
    "pack_arrays": "fastpack.pack",
    "PackSummary": "fastpack.pack",
    "PackSpec": "fastpack.spec",
    "read_token_batches": "fastpack.readers",
}


__getattr__ = lazy_attributes(__name__, _LAZY)
