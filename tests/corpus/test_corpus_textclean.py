"""The text cleaner step by step: exact outputs and counts on hand-written strings."""
from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastpack.config import CleanConfig
from fastpack.corpus.clean import split_chapters
from fastpack.corpus.textclean import NoiseLog, clean_text, compile_line_pattern, visible

BOILERPLATE = compile_line_pattern(CleanConfig().boilerplate_pattern, "NFC")
CHAPTERS = compile_line_pattern(CleanConfig().chapter_pattern, "NFC")


def clean(text: str, **kw) -> tuple[str, NoiseLog]:
    log = NoiseLog()
    return clean_text(text, boilerplate=BOILERPLATE, log=log, source="a.txt", **kw), log


def test_nfd_and_nfc_give_the_same_text():
    nfc = "Tiếng Việt có dấu: ầ ẩ ẫ ậ ờ ở ỡ ợ ự ữ ử ừ đ Đ.\nNgười ấy đã về."
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc and len(nfd) > len(nfc)
    out_nfc, log_nfc = clean(nfc)
    out_nfd, log_nfd = clean(nfd)
    assert out_nfd == out_nfc == nfc
    assert log_nfc.counts["unicode"] == 0
    assert log_nfd.counts["unicode"] == 2  # both lines were decomposed


def test_mixed_composition_within_a_word():
    # "ệ" as e + circumflex + dot below, and as ê + dot below: both become U+1EC7.
    assert clean("Vi\u0065\u0302\u0323t Vi\u00ea\u0323t")[0] == "Vi\u1ec7t Vi\u1ec7t"


def test_bom_zero_width_and_control_characters_are_removed_and_counted():
    text = "\ufeffMột\u200b hai\u200d ba\u00ad bốn\x07 năm\x0c sáu\ufeff bảy\u2060."
    out, log = clean(text)
    assert out == "Một hai ba bốn năm sáu bảy."
    assert (log.counts["bom"], log.counts["zero_width"], log.counts["control"]) == (2, 4, 2)
    assert log.examples["bom"][0]["text"].startswith("<U+FEFF>Một")


def test_zero_width_between_letter_and_accent_does_not_block_composition():
    assert clean("Vie\u200b\u0302\u0323t")[0] == "Việt"


def test_html_tags_and_entities():
    text = "<p>Chào&nbsp;bạn &amp; em</p><br/><i>tr&#7841;i</i> &#x1EA1; &notanentity; a < b > c"
    out, log = clean(text)
    assert out == "Chào bạn & em\n\ntrại ạ &notanentity; a < b > c"
    assert log.counts["html_tags"] == 5  # <p> </p> <br/> -> newline, <i> </i> removed
    assert log.counts["html_entities"] == 4  # &nbsp; &amp; &#7841; &#x1EA1; (not the unknown one)


def test_html_off_keeps_tags():
    out, log = clean("<b>đậm</b>", strip_tags=False)
    assert out == "<b>đậm</b>" and log.counts["html_tags"] == 0


def test_script_blocks_and_comments_go_whole():
    out, log = clean("Trước<script>var x = '<b>';</script> sau<!-- ghi chú --> nữa")
    assert out == "Trước sau nữa"
    assert log.counts["html_tags"] == 2


def test_url_lines_dropped_inline_urls_removed():
    text = ("Dòng đầu tiên.\nhttps://truyen.example.vn/chuong-1\nXem tại www.example.vn\n"
            "Anh ấy mở trang https://a.example.com/x?y=1 rồi đọc hết một mạch đến sáng.\ntruyenhay.net")
    out, log = clean(text)
    assert out == "Dòng đầu tiên.\nAnh ấy mở trang rồi đọc hết một mạch đến sáng."
    assert log.counts["url_lines"] == 3
    assert log.counts["inline_urls"] == 1


def test_boilerplate_lines():
    text = ("Nguồn: truyenfull\nNội dung chính.\nChúc các bạn đọc truyện vui vẻ!\n"
            "Converter : ABC\nNguồn nước trong làng rất sạch.")
    out, log = clean(text)
    assert out == "Nội dung chính.\nNguồn nước trong làng rất sạch."
    assert log.counts["boilerplate"] == 3


def test_boilerplate_after_blank_lines_and_at_the_end():
    out, log = clean("Một.\n\n\nChúc các bạn đọc truyện vui vẻ!\n\nHai.\n\nNguồn: x\n\nwww.a.vn")
    assert out == "Một.\n\nHai."
    assert (log.counts["boilerplate"], log.counts["url_lines"]) == (2, 1)


def test_boilerplate_off():
    out, log = clean("Nguồn: x\nhttps://a.vn\nChữ.", drop_boilerplate=False)
    assert out == "Nguồn: x\nhttps://a.vn\nChữ."
    assert log.counts["boilerplate"] == log.counts["url_lines"] == 0


def test_whitespace_blank_lines_and_line_endings():
    text = "  Một\t hai\u00a0ba   bốn  \r\n\r\n\r\n\r\nNăm\rsáu\u2028bảy\n\n\n\n"
    out, log = clean(text)
    assert out == "Một hai ba bốn\n\nNăm\nsáu\nbảy"
    assert log.counts["line_endings"] == 6
    assert log.counts["blank_lines"] == 2
    # runs: "  " (start), "\t ", NBSP, "   ", "  " (end) -> 5; then the single spaces left at both line edges -> 2
    assert log.counts["whitespace"] == 7


def test_visible_spells_invisible_characters():
    assert visible("a\u200bb\nc\u0301\u00a0") == "a<U+200B>b\\nc<U+0301><U+00A0>"


def test_split_chapters_headings_preamble_and_volumes():
    text = ("Tên Truyện\nTác giả: A\n\nQuyển 1\n\nChương 1: Mở đầu\n\nNội dung một.\n\n"
            "CHƯƠNG II - HAI\n\nNội dung hai.\n\nHồi 3\nNội dung ba.\nPhần lớn người ta không biết.")
    pieces = split_chapters(text, CHAPTERS)
    assert pieces == [
        (None, "Tên Truyện\nTác giả: A"),
        ("Chương 1: Mở đầu", "Quyển 1\nChương 1: Mở đầu\n\nNội dung một."),
        ("CHƯƠNG II - HAI", "CHƯƠNG II - HAI\n\nNội dung hai."),
        ("Hồi 3", "Hồi 3\nNội dung ba.\nPhần lớn người ta không biết."),
    ]


def test_split_chapters_ignores_long_lines_and_can_be_off():
    long_line = "Chương 1 " + "rất dài " * 30
    assert split_chapters(long_line + "\nChữ", CHAPTERS) == [(None, long_line + "\nChữ")]
    assert split_chapters("Chương 1\nA", None) == [(None, "Chương 1\nA")]


def test_chapter_pattern_matches_nfd_headings_after_cleaning():
    text = unicodedata.normalize("NFD", "Chương 1\nMột.\nChương 2\nHai.")
    cleaned, _ = clean(text)
    assert [h for h, _ in split_chapters(cleaned, CHAPTERS)] == ["Chương 1", "Chương 2"]


_LETTERS = "aăâbcdđeêghiklmnoôơpqrstuưvxyAĂÂĐÊÔƠƯ àáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ.,!?"
_NOISE = ["\ufeff", "\u200b", "\u200c", "\u200d", "\u00ad", "\x07", "\x0c", "\t", "\u00a0", "  ", "\r\n", "\n\n\n",
          "\u0301", "\u0323", "\u0302", "<b>", "</p>", "<br/>", "&nbsp;", "&quot;", " https://x.example.vn/a "]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.text(alphabet=_LETTERS, max_size=12), st.sampled_from(_NOISE)), max_size=40))
def test_clean_text_output_is_clean_and_a_fixed_point(parts):
    out, _ = clean("".join(parts))
    assert unicodedata.is_normalized("NFC", out)
    assert not any(unicodedata.category(ch) in ("Cf", "Cc") and ch != "\n" for ch in out)
    assert "  " not in out and "\n\n\n" not in out and out == out.strip()
    assert not re.search(r"(?m)^ | $", out)
    assert "https://" not in out and "<br/>" not in out and "&nbsp;" not in out
    assert clean(out)[0] == out


def test_noise_log_keeps_three_examples_and_counts_files():
    log = NoiseLog()
    for i in range(5):
        log.add("bom", 2, f"f{i % 2}.txt", {"text": str(i)})
    log.add("bom", 0, "f9.txt", {"text": "none"})
    assert log.to_dict(("bom", "control")) == {
        "bom": {"count": 10, "files": 2, "examples": [{"source": "f0.txt", "text": "0"},
                                                      {"source": "f1.txt", "text": "1"},
                                                      {"source": "f0.txt", "text": "2"}]},
        "control": {"count": 0, "files": 0, "examples": []},
    }


@pytest.mark.parametrize("field", ["chapter_pattern", "boilerplate_pattern"])
def test_bad_regex_in_config_names_the_key(field):
    from fastpack.errors import UserError

    with pytest.raises(UserError, match=f"clean.{field} is not a valid regular expression"):
        CleanConfig(**{field: "(unclosed"})
