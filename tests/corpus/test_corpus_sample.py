"""The generated sample corpus: deterministic, Vietnamese, noisy where it should be; and the public API."""
from __future__ import annotations

import unicodedata

import pytest

import fastpack.corpus as corpus
from fastpack.corpus import write_sample_corpus
from fastpack.errors import UserError


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample_corpus(tmp_path_factory.mktemp("sample"), size_mb=0.3)


def test_same_arguments_same_bytes(sample, tmp_path):
    again = write_sample_corpus(tmp_path, size_mb=0.3)
    assert [p.name for p in again.files] == [p.name for p in sample.files]
    for a, b in zip(sample.files, again.files):
        assert a.read_bytes() == b.read_bytes(), a.name
    other = write_sample_corpus(tmp_path / "seed1", size_mb=0.3, seed=1)
    assert other.files[1].read_bytes() != sample.files[1].read_bytes()


def test_size_and_files(sample):
    assert 0.3e6 <= sample.bytes <= 0.5e6
    names = [p.name for p in sample.files]
    assert len(names) == 14 and names[0] == "00_ghi_chu.txt" and "12_anh_sang_phuong_dong_ban_sao.txt" in names
    assert not any(n.startswith("99_") for n in names)


def test_text_is_vietnamese_with_chapters(sample):
    text = sample.files[1].read_text("utf-8")
    assert text.startswith("Kiếm Khách Giang Hồ\nTác giả: ")
    assert text.count("\nChương ") >= 5
    assert sum(ch in "ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ" for ch in text) > len(text) // 20


def test_each_noise_kind_is_present(sample):
    files = {p.name[:2]: p.read_bytes() for p in sample.files}
    nfd = files["02"].decode("utf-8")
    assert not unicodedata.is_normalized("NFC", nfd) and unicodedata.normalize("NFC", nfd) != nfd
    assert files["03"].startswith(b"\xef\xbb\xbf") and b"\r\n" in files["03"]
    assert b"<p>" in files["05"] and b"&nbsp;" in files["05"] and b"&#7841;" in files["05"]
    assert "\ufeff".encode() in files["07"] and b"\x07" in files["07"] and b"\x0c" in files["07"]
    assert "\u200b".encode() in files["07"]
    assert b"https://maps.example.com" in files["09"]
    assert "Chương 999: Lời cuối".encode() in files["10"]
    assert "Nguồn: https://truyen.example.vn/".encode() in files["01"]


def test_bad_utf8_only_when_asked(tmp_path):
    result = write_sample_corpus(tmp_path, size_mb=0.1, bad_utf8=True)
    legacy = [p for p in result.files if p.name.startswith("99_")]
    assert len(legacy) == 1
    with pytest.raises(UnicodeDecodeError):
        legacy[0].read_bytes().decode("utf-8")


def test_bad_size():
    with pytest.raises(UserError, match="--size-mb must be > 0"):
        write_sample_corpus("unused", size_mb=0)


def test_every_public_name_resolves():
    for name in corpus.__all__:
        assert getattr(corpus, name) is not None, name
    assert corpus.SAMPLE_VOCAB_SIZE == 3000
