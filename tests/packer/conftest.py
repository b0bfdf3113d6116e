import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # packer_reference.py


@pytest.fixture
def many_parts(monkeypatch):
    """Make even tiny files split into several parallel parts and tiny blocks."""
    from fastpack import readers

    monkeypatch.setattr(readers, "MIN_PART_BYTES", 1)
    monkeypatch.setattr(readers, "MAX_PARTS", 5)
