"""The tokenizer stage: ids, round trips, vocab-size errors, determinism, skip when up to date."""
from __future__ import annotations

import shutil

import orjson
import pytest
import sentencepiece as spm

from fastpack.corpus import train_tokenizer
from fastpack.errors import UserError
from fastpack.tokenizer_info import load_tokenizer_info


@pytest.fixture(scope="module")
def sp(prepared):
    root, _ = prepared
    return spm.SentencePieceProcessor(model_file=str(root / "tokenizer/sp_model.model"))


def test_tokenizer_info_has_real_special_ids(prepared, sp):
    root, config = prepared
    info = load_tokenizer_info(root / "tokenizer")
    assert config.tokenizer.vocab_size == 1000
    assert (info.vocab_size, info.pad_id, info.unk_id, info.bos_id, info.eos_id) == (1000, 0, 1, 2, 3)
    assert info.model_type == "unigram" and info.model_file == "sp_model.model"
    assert [sp.id_to_piece(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert sp.piece_to_id("\n") == 4  # the newline symbol right after the specials
    assert info.training["build"]["inputs"][0]["path"] == "dataset/splits/train.jsonl"
    vocab = (root / "tokenizer/sp_model.vocab").read_text("utf-8")
    assert vocab.startswith("<pad>\t0\n<unk>\t0\n<s>\t0\n</s>\t0\n\n\t0\n<0x00>\t0\n")


def test_round_trip_on_every_val_document(prepared, sp):
    root, _ = prepared
    docs = [orjson.loads(x)["text"] for x in (root / "dataset/splits/val.jsonl").read_bytes().splitlines()]
    assert docs
    for text in docs:
        assert sp.decode(sp.encode(text)) == text


@pytest.mark.parametrize("text", [
    "Chương 1: Mở đầu\n\n- Anh đi đâu?\nEm về nhà.",
    "Giá 1.250.000₫ — “trích dẫn” … 😀 ǅ ∑ 漢字",  # unseen characters: byte fallback, no <unk>
    "a\n\n\nb",
])
def test_round_trip_on_normalized_text_with_rare_characters(sp, text):
    ids = sp.encode(text)
    assert sp.decode(ids) == text
    assert sp.unk_id() not in ids


def test_vocab_too_large_is_a_clear_error(prepared, tmp_path):
    root, config = prepared
    shutil.copytree(root / "dataset/splits", tmp_path / "dataset/splits")
    with pytest.raises(UserError, match=r"tokenizer.vocab_size 60000 is too large for .*train.jsonl: SentencePiece "
                                         r"can make at most \d+ pieces from it; pass --vocab-size \d+ or less"):
        train_tokenizer(config.replace("tokenizer", vocab_size=60000), tmp_path)
    with pytest.raises(UserError, match=r"tokenizer.vocab_size 270 is too small .* need \d+; pass --vocab-size \d+ or more"):
        train_tokenizer(config.replace("tokenizer", vocab_size=270), tmp_path)
    assert not (tmp_path / "tokenizer/sp_model.model").exists()


def test_missing_train_split(tmp_path, prepared):
    _, config = prepared
    with pytest.raises(UserError, match=r"train.jsonl: train split not found \(run `python -m fastpack.corpus split` first\)"):
        train_tokenizer(config, tmp_path)


def test_bad_line_in_train_split_names_file_and_line(tmp_path, prepared):
    root, config = prepared
    shutil.copytree(root / "dataset/splits", tmp_path / "dataset/splits")
    with open(tmp_path / "dataset/splits/train.jsonl", "ab") as fh:
        fh.write(b'{"id": "x", "text": 5}\n')
    n = len((tmp_path / "dataset/splits/train.jsonl").read_bytes().splitlines())
    with pytest.raises(UserError, match=rf"train.jsonl:{n}: expected a string field 'text', found a int"):
        train_tokenizer(config, tmp_path)


def test_retraining_gives_the_same_bytes_and_skips_when_unchanged(prepared, tmp_path):
    root, config = prepared
    shutil.copytree(root / "dataset/splits", tmp_path / "dataset/splits")
    result = train_tokenizer(config, tmp_path)
    assert not result.skipped
    for name in ("sp_model.model", "sp_model.vocab"):
        assert (tmp_path / "tokenizer" / name).read_bytes() == (root / "tokenizer" / name).read_bytes()
    assert train_tokenizer(config, tmp_path).skipped
    assert train_tokenizer(config.replace("tokenizer", num_threads=1), tmp_path).skipped  # threads: not a setting
    (tmp_path / "tokenizer/tokenizer_info.json").unlink()
    assert not train_tokenizer(config, tmp_path).skipped
