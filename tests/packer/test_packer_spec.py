"""PackSpec: one set of pack parameters, whoever builds it (keywords, the config, a meta)."""
import json

import pytest

from fastpack import PackSpec, pack_arrays, pack_sequences
from fastpack.config import Config
from fastpack.errors import UserError
from fastpack.meta import PackMeta


def test_config_keywords_and_meta_build_the_same_spec(tmp_path):
    packing = Config().replace("packing", seq_len=8, eos_id=3, pad_id=0, vocab_size=500, dtype="auto").packing
    from_config = PackSpec.from_config(packing)
    from_keywords = PackSpec.from_keywords(seq_len=8, eos_id=3, pad_id=0, vocab_size=500, dtype="auto")
    assert from_config == from_keywords
    assert (from_config.stride, from_config.dtype) == (8, "uint16")  # defaults resolved once, in the spec
    assert PackSpec.from_dict(json.loads(json.dumps(from_config.to_dict()))) == from_config
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"input_ids": [i, i + 1, i + 2]}) + "\n" for i in range(1, 30)))
    pack_sequences(src, tmp_path / "o.npy", from_config)
    assert PackMeta.read(tmp_path / "o.meta.json").spec() == from_config


def test_errors_name_the_setting_as_the_caller_spelled_it():
    packing = Config().replace("packing", seq_len=4, stride=6, eos_id=0).packing
    with pytest.raises(UserError, match=r"^packing.stride \(--stride\) must be between 1 and seq_len \(4\), got 6"):
        PackSpec.from_config(packing)
    with pytest.raises(UserError, match=r"^--stride must be between 1 and seq_len \(4\), got 6"):
        PackSpec.from_keywords(seq_len=4, stride=6, eos_id=0)
    with pytest.raises(UserError, match=r"packing.mode \(--mode\) must be one of concat, document, bestfit"):
        PackSpec.from_config(Config().replace("packing", mode="sliding", eos_id=0).packing)
    with pytest.raises(TypeError, match="not both"):
        pack_arrays([[1, 2]], PackSpec(seq_len=2), seq_len=4)
