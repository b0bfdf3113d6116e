"""The trainer takes the window length from the packed meta: pack with the real packer, train with
no seq_len anywhere in the config; an explicit, different length is a one-line error."""
import json

import numpy as np
import pytest

from fastpack import pack_sequences
from fastpack.errors import UserError
from trainer.config import load_config
from trainer.train_lm import run_training


def write_tokens(path, helpers, sp_model_file, n_docs, offset=0):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(sp_model_file))
    sentences = helpers.SENTENCES
    path.write_text("".join(json.dumps({"input_ids": sp.encode(sentences[(offset + i) % len(sentences)])}) + "\n"
                            for i in range(n_docs)))
    return path


def test_packed_at_256_trains_with_no_seq_len_in_the_config(lm_root, sp_model_file, helpers, tmp_path):
    packed = tmp_path / "packed"
    for split, n, offset in (("train", 1600, 0), ("val", 200, 1)):
        src = write_tokens(tmp_path / f"{split}_tokens.jsonl", helpers, sp_model_file, n, offset)
        pack_sequences(src, packed / f"{split}.npy", seq_len=256, eos_id=helpers.EOS, pad_id=helpers.PAD)
    assert np.load(packed / "train.npy").shape[1] == 256
    config = load_config(lm_root / "config" / "training_config.json", ["packing.seq_len=null"])
    assert config.packing.seq_len is None and config.model.context_len is None
    logs = []
    summary = run_training(config, root=lm_root, packed_dir=packed, output_dir=tmp_path / "out", nproc=1,
                           max_steps=2, log=logs.append)
    assert summary["step"] == 2 and summary["model"]["context_len"] == 256
    assert summary["tokens_seen"] == 2 * config.training.batch_size * 256

    explicit = config.replace("model", context_len=128)
    with pytest.raises(UserError, match=r"train.meta.json: windows of seq_len 256, but the model's context is 128"):
        run_training(explicit, root=lm_root, packed_dir=packed, output_dir=tmp_path / "out2", nproc=1, max_steps=2,
                     log=logs.append)
    agreeing = config.replace("packing", seq_len=256).replace("model", context_len=256)
    assert run_training(agreeing, root=lm_root, packed_dir=packed, output_dir=tmp_path / "out3", nproc=1,
                        max_steps=1, log=logs.append)["model"]["context_len"] == 256
