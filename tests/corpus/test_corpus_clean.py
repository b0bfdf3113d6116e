"""The clean stage on tiny folders: records, reports, drops, bad input, idempotence."""
from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import orjson
import pytest

from fastpack.config import Config
from fastpack.corpus import clean_corpus
from fastpack.errors import UserError

PARA = "Người lái đò sông Đà đã già, nhưng tay chèo vẫn vững như ngày nào trên dòng nước xiết. "
BODY = PARA * 4  # 360 characters: longer than min_doc_chars (200)


def novel(title: str, chapters: int, salt: str = "") -> str:
    parts = [title, "Tác giả: Nguyễn Tuân", ""]
    for n in range(1, chapters + 1):
        parts += [f"Chương {n}: Phần {salt}{n}", "", f"{salt}{n} {BODY}", ""]
    return "\n".join(parts)


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def run(tmp: Path, **clean) -> tuple[list[dict], dict, dict]:
    config = Config().replace("paths", raw_dir="raw").replace("clean", **clean)
    clean_corpus(config, tmp)
    records = [orjson.loads(line) for line in (tmp / config.paths.preprocessed).read_bytes().splitlines()]
    summary = json.loads((tmp / "reports/preprocessing_summary.json").read_text("utf-8"))
    noise = json.loads((tmp / "reports/clean_noise_report.json").read_text("utf-8"))["kinds"]
    return records, summary, noise


def test_records_one_per_chapter_with_source_title_and_heading(tmp_path):
    write(tmp_path / "raw/a.txt", novel("Người Lái Đò", 3))
    write(tmp_path / "raw/sub/b.txt", novel("Hoa Sen", 2, salt="b"))
    records, summary, noise = run(tmp_path)
    assert [r["id"] for r in records] == ["a.txt#0002", "a.txt#0003", "a.txt#0004", "sub/b.txt#0002", "sub/b.txt#0003"]
    assert {r["source"] for r in records} == {"a.txt", "sub/b.txt"}
    assert [r["title"] for r in records] == ["Người Lái Đò"] * 3 + ["Hoa Sen"] * 2
    assert records[0]["chapter"] == "Chương 1: Phần 1"
    assert records[0]["text"] == f"Chương 1: Phần 1\n\n1 {BODY.strip()}"
    assert summary["documents"] == {"found": 7, "kept": 5, "dropped_short": 2, "dropped_duplicate": 0}
    assert noise["short_documents"]["count"] == 2  # the two title + author preambles
    assert summary["sources_kept"] == 2 and summary["files"] == 2
    assert summary["characters"]["clean"] == sum(len(r["text"]) for r in records)


def test_nfc_and_nfd_folders_give_identical_output(tmp_path):
    text = novel("Mùa Thu Hà Nội", 3)
    write(tmp_path / "nfc/raw/a.txt", text)
    write(tmp_path / "nfd/raw/a.txt", unicodedata.normalize("NFD", text))
    nfc, _, nfc_noise = run(tmp_path / "nfc")
    nfd, _, nfd_noise = run(tmp_path / "nfd")
    assert nfc == nfd
    assert nfc_noise["unicode"]["count"] == 0 and nfd_noise["unicode"]["count"] > 0


def test_duplicates_dropped_after_normalization_and_counted(tmp_path):
    text = novel("Gốc", 3)
    write(tmp_path / "raw/a.txt", text)
    write(tmp_path / "raw/b_copy.txt", unicodedata.normalize("NFD", text).replace("\n", "\r\n"))
    records, summary, noise = run(tmp_path)
    assert [r["source"] for r in records] == ["a.txt"] * 3
    assert noise["duplicate_documents"]["count"] == 3
    assert noise["duplicate_documents"]["examples"][0]["duplicate_of"] == "a.txt#0002"
    records, summary, _ = run(tmp_path, dedupe=False, min_doc_chars=0)
    assert summary["documents"]["kept"] == 8


def test_min_doc_chars_and_chapter_splitting_are_configurable(tmp_path):
    write(tmp_path / "raw/a.txt", novel("Một", 2))
    records, _, _ = run(tmp_path, split_chapters=False)
    assert len(records) == 1 and records[0]["chapter"] is None and records[0]["text"].startswith("Một\nTác giả")
    records, _, _ = run(tmp_path, min_doc_chars=0)
    assert [r["id"] for r in records] == ["a.txt#0001", "a.txt#0002", "a.txt#0003"]


def test_noise_is_removed_from_every_record_and_counted(tmp_path):
    dirty = ("\ufeffTruyện\r\n\r\nChương 1: Đầu\r\n<p>Anh\u200b ấy&nbsp;đi.</p>\r\nNguồn: https://x.example.vn/1\r\n\r\n\r\n\r\n"
             + BODY + "\x07\r\n")
    write(tmp_path / "raw/a.txt", dirty)
    records, summary, noise = run(tmp_path)
    assert records[0]["text"] == "Chương 1: Đầu\n\nAnh ấy đi.\n\n" + BODY.strip()
    for kind in ("bom", "zero_width", "control", "html_tags", "html_entities", "boilerplate", "line_endings", "blank_lines"):
        assert noise[kind]["count"] > 0 and noise[kind]["files"] == 1, kind
        assert summary["noise"][kind] == noise[kind]["count"]


def test_jsonl_input_with_text_field(tmp_path):
    lines = [{"source": "novel-x", "title": "X", "text": novel("X", 2)},
             {"text": f"Không tên. {BODY}"},
             {"title": "Y", "body": f"Trường khác. {BODY}"}]
    write(tmp_path / "raw/corpus.jsonl", "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    with pytest.raises(UserError, match=r"corpus.jsonl:3: expected a string field 'text', found keys \['body', 'title'\]"):
        run(tmp_path)
    write(tmp_path / "raw/corpus.jsonl", "\n".join(json.dumps(x, ensure_ascii=False) for x in lines[:2]) + "\n")
    records, _, _ = run(tmp_path)
    assert [(r["source"], r["title"]) for r in records] == [("novel-x", "X"), ("novel-x", "X"), ("corpus.jsonl:2",) * 2]


def test_bad_utf8_error_names_file_and_line(tmp_path):
    write(tmp_path / "raw/good.txt", novel("Tốt", 1))
    write(tmp_path / "raw/old.txt", "Dòng một\nDòng hai ".encode("utf-8") + "có".encode("cp1258"))
    with pytest.raises(UserError, match=r"old.txt: not valid UTF-8 \(line 2, byte 12: .*--on-bad-utf8 skip\|replace"):
        run(tmp_path)
    assert not (tmp_path / "dataset/preprocessed/all_novels_preprocessed_clean.jsonl").exists()


def test_bad_utf8_skip_and_replace_are_reported(tmp_path, capsys):
    write(tmp_path / "raw/good.txt", novel("Tốt", 1))
    write(tmp_path / "raw/old.txt", ("Chương 1\n" + BODY).encode("cp1258", errors="replace") + b"\xff")
    records, summary, noise = run(tmp_path, on_bad_utf8="skip")
    assert {r["source"] for r in records} == {"good.txt"}
    assert noise["bad_utf8_files"]["count"] == 1 and noise["bad_utf8_files"]["examples"][0]["source"] == "old.txt"
    assert "old.txt" in capsys.readouterr().err
    records, _, noise = run(tmp_path, on_bad_utf8="replace")
    assert {r["source"] for r in records} == {"good.txt", "old.txt"}
    assert "\ufffd" in next(r["text"] for r in records if r["source"] == "old.txt")


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "raw").mkdir()
    write(tmp_path / "raw/notes.md", "không phải .txt")
    with pytest.raises(UserError, match=r"raw: no \.txt or \.jsonl files found"):
        run(tmp_path)
    with pytest.raises(UserError, match=r"nowhere: raw corpus folder not found"):
        clean_corpus(Config().replace("paths", raw_dir="nowhere"), tmp_path)


def test_everything_too_short_is_an_error(tmp_path):
    write(tmp_path / "raw/a.txt", "Ngắn quá.")
    with pytest.raises(UserError, match=r"no documents left after cleaning \(1 found: 1 shorter than clean.min_doc_chars=200"):
        run(tmp_path)


def test_second_run_skips_and_changes_rebuild(tmp_path):
    write(tmp_path / "raw/a.txt", novel("A", 2))
    config = Config().replace("paths", raw_dir="raw")
    assert not clean_corpus(config, tmp_path).skipped
    out = tmp_path / config.paths.preprocessed
    before = out.stat().st_mtime_ns
    again = clean_corpus(config, tmp_path)
    assert again.skipped and "up to date" in again.message and out.stat().st_mtime_ns == before
    assert not clean_corpus(config.replace("clean", min_doc_chars=10), tmp_path).skipped  # a setting changed
    assert clean_corpus(config.replace("clean", min_doc_chars=10), tmp_path).skipped
    write(tmp_path / "raw/a.txt", novel("A", 3))  # an input changed
    assert not clean_corpus(config, tmp_path).skipped
    out.unlink()  # an output went missing
    assert not clean_corpus(config, tmp_path).skipped
    assert not clean_corpus(config, tmp_path, force=True).skipped


def test_parallel_cleaning_gives_the_same_bytes(tmp_path, monkeypatch):
    from fastpack.corpus import clean as clean_module
    from fastpack.corpus import write_sample_corpus

    write_sample_corpus(tmp_path / "raw", size_mb=0.2)
    lines = [json.dumps({"source": f"j{i % 3}", "text": novel(f"J{i}", 2, salt=str(i))}, ensure_ascii=False)
             for i in range(40)]
    write(tmp_path / "raw/more.jsonl", "\n".join(lines) + "\n\n")
    write(tmp_path / "raw/empty.jsonl", "\n \n")
    monkeypatch.setattr(clean_module, "JSONL_CHUNK_BYTES", 2000)  # many chunks per JSONL file
    monkeypatch.setattr(clean_module, "PARALLEL_MIN_BYTES", 1)  # a pool even for this small input
    config = Config().replace("paths", raw_dir="raw")
    results = {}
    for workers in (1, 3):
        clean_corpus(config, tmp_path, workers=workers, force=True)
        results[workers] = [(tmp_path / rel).read_bytes() for rel in (config.paths.preprocessed,
                                                                       "reports/clean_noise_report.json",
                                                                       "reports/preprocessing_summary.json")]
    assert results[1] == results[3]
    noise = json.loads(results[1][1])["kinds"]
    assert noise["empty_files"]["count"] == 1 and noise["empty_files"]["examples"][0]["source"] == "empty.jsonl"
    sources = {orjson.loads(x)["source"] for x in results[1][0].splitlines()}
    assert {"j0", "j1", "j2"} <= sources
