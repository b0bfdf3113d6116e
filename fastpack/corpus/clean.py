"""Stage 1, clean: raw novels -> `dataset/preprocessed/all_novels_preprocessed_clean.jsonl` + two reports.

Input: `paths.raw_dir`, a folder searched recursively for `.txt` files (one novel per file, UTF-8)
and `.jsonl` files (one record per line with a `clean.text_field` string; optional `source`/`title`
fields), or a single such file. Hidden files and folders are ignored; files are read in sorted
path order, so the output is deterministic.

How a novel becomes documents: the text is cleaned (see `textclean`), then cut at every line that
matches `clean.chapter_pattern` (at most 150 characters long): one document per chapter, its
heading as the first line. Text before the first heading (title, author, foreword) is a document
of its own; a heading with no text under it (a volume heading right before a chapter heading) is
joined to the next chapter. Every document keeps the novel's `source` (the file's path under the
raw folder, or a JSONL record's `source`/`title`): the split stage keeps all documents of one
source together, so no chapter of a test novel is trained on.

Then documents shorter than `clean.min_doc_chars` are dropped, and exact duplicates (same text
after cleaning, so an NFD copy of an NFC chapter is a duplicate too) are dropped after their first
occurrence. Every change and drop is counted in `reports/clean_noise_report.json`.

Output lines: {"id": "<source>#0003", "source", "title", "chapter": heading or null, "text"}.
"""
from __future__ import annotations

import hashlib
import re
import sys
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from fastpack.atomic import write_json_atomic
from fastpack.config import CleanConfig, Config
from fastpack.corpus.build import Build, StageResult, fingerprint, read_build, rel, tree_fingerprint, up_to_date
from fastpack.corpus.jsonl import open_output, parse_record, text_of
from fastpack.corpus.parallel import available_cpus, ordered_map, worker_pool
from fastpack.corpus.progress import byte_bar
from fastpack.corpus.textclean import (TEXT_KINDS, NoiseLog, clean_text, compile_line_pattern, visible,
                                      zero_width_pattern)
from fastpack.errors import UserError

VERSION = 1
MAX_HEADING_CHARS = 150
MAX_TITLE_CHARS = 100
RAW_SUFFIXES = (".txt", ".jsonl")
JSONL_CHUNK_BYTES = 1 << 20
PARALLEL_MIN_BYTES = 256 << 10  # one worker per this much input at most: small corpora stay in-process
FILE_KINDS = ("bad_utf8_files", "empty_files")
DOC_KINDS = ("short_documents", "duplicate_documents")
NOISE_REPORT = "clean_noise_report.json"
SUMMARY_REPORT = "preprocessing_summary.json"


def list_raw_files(raw: Path) -> list[Path]:
    """The raw inputs under `raw` (or `raw` itself), sorted; a clear error when there are none."""
    if raw.is_file():
        if raw.suffix.lower() not in RAW_SUFFIXES:
            raise UserError(f"{raw}: expected a folder of .txt files or a .jsonl file, "
                            f"found a {raw.suffix or 'suffix-less'} file")
        return [raw]
    if not raw.is_dir():
        raise UserError(f"{raw}: raw corpus folder not found (pass --raw DIR or set paths.raw_dir)")
    files = [p for p in raw.rglob("*") if p.is_file() and p.suffix.lower() in RAW_SUFFIXES
             and not any(part.startswith(".") for part in p.relative_to(raw).parts)]
    if not files:
        raise UserError(f"{raw}: no .txt or .jsonl files found (expected one UTF-8 .txt file per novel)")
    return sorted(files, key=lambda p: p.relative_to(raw).as_posix())


def decode(data: bytes, path: Path, name: str, policy: str, log: NoiseLog, first_line: int = 1) -> Optional[str]:
    """UTF-8 text, or None when the file (or JSONL line) is skipped; never silent about bad bytes."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        where = f"line {line}, byte {column}: {data[exc.start:exc.start + 4]!r}"
        if policy == "error":
            raise UserError(f"{path}: not valid UTF-8 ({where}); convert it to UTF-8, "
                            f"or pass --on-bad-utf8 skip|replace") from None
        log.add("bad_utf8_files", 1, name, {"text": where, "action": policy})
        if policy == "skip":
            return None
        return data.decode("utf-8", errors="replace")


def split_chapters(text: str, pattern: Optional[re.Pattern]) -> list[tuple[Optional[str], str]]:
    """[(heading or None, text)] in order; heading-only pieces are joined to the next one."""
    if pattern is None:
        return [(None, text)]
    starts = [m for m in pattern.finditer(text) if len(m.group()) <= MAX_HEADING_CHARS]
    if not starts:
        return [(None, text)]
    pieces: list[tuple[Optional[str], str]] = []
    if text[: starts[0].start()].strip():
        pieces.append((None, text[: starts[0].start()].strip()))
    carry = ""
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        chunk = text[m.start():end].strip()
        heading = m.group().strip()
        if chunk == heading and i + 1 < len(starts):  # a volume heading right before a chapter
            carry += heading + "\n"
            continue
        pieces.append((heading, carry + chunk))
        carry = ""
    return pieces


@dataclass
class _Cleaned:
    """What a worker made of one task: the novels' documents, and what it changed."""

    name: str
    last: bool  # the file's last task (an empty file is reported when its tasks found no line)
    lines: int  # non-blank lines (or 1 for a non-blank .txt)
    bytes_read: int
    raw_chars: int = 0
    novels: list = field(default_factory=list)  # [(source, title, [(heading, text)])]
    log: NoiseLog = field(default_factory=NoiseLog)


def _tasks(files: list[Path], base: Path, cfg: CleanConfig) -> Iterator[tuple]:
    """(path, name, cfg, lines, last): lines is None for a .txt novel, [(lineno, bytes)] for a JSONL chunk."""
    for path in files:
        name = path.relative_to(base).as_posix()
        if path.suffix.lower() == ".txt":
            yield str(path), name, cfg, None, True
            continue
        chunk, size = [], 0
        with open(path, "rb") as fh:
            for lineno, line in enumerate(fh, 1):
                chunk.append((lineno, line))
                size += len(line)
                if size >= JSONL_CHUNK_BYTES:
                    yield str(path), name, cfg, chunk, False
                    chunk, size = [], 0
        yield str(path), name, cfg, chunk, True


def _clean_task(task: tuple) -> _Cleaned:
    """Decode, clean and cut into chapters: one .txt novel or one chunk of JSONL records (runs in a worker)."""
    path_str, name, cfg, lines, last = task
    path = Path(path_str)
    chapter_re = compile_line_pattern(cfg.chapter_pattern, cfg.unicode_form) if cfg.split_chapters else None
    boilerplate = compile_line_pattern(cfg.boilerplate_pattern, cfg.unicode_form)

    def novel(out: _Cleaned, source: str, title: Optional[str], text: str) -> None:
        out.raw_chars += len(text)
        text = clean_text(text, form=cfg.unicode_form, strip_tags=cfg.strip_html, boilerplate=boilerplate,
                          drop_boilerplate=cfg.drop_boilerplate, log=out.log, source=source)
        pieces = split_chapters(text, chapter_re)
        out.novels.append((source, title or _title(source, pieces), pieces))

    if lines is None:  # one novel: a few MB at most
        data = path.read_bytes()
        out = _Cleaned(name, last, int(bool(data.strip())), len(data))
        text = decode(data, path, name, cfg.on_bad_utf8, out.log) if out.lines else None
        if text is not None:
            novel(out, name, None, text)
        return out
    out = _Cleaned(name, last, 0, sum(len(line) for _, line in lines))
    for lineno, line in lines:
        if not line.strip():
            continue
        out.lines += 1
        text_line = decode(line, path, name, cfg.on_bad_utf8, out.log, first_line=lineno)
        if text_line is None:
            continue
        record = parse_record(path, lineno, text_line)
        text = text_of(path, lineno, record, cfg.text_field)
        source = _str_field(record, "source") or _str_field(record, "title") or f"{name}:{lineno}"
        novel(out, source, _str_field(record, "title") or source, text)
    return out


def _str_field(record: dict[str, Any], key: str) -> Optional[str]:
    value = record.get(key)
    return unicodedata.normalize("NFC", value.strip()) if isinstance(value, str) and value.strip() else None


def _title(source: str, pieces: list[tuple[Optional[str], str]]) -> str:
    """The novel's first line when it comes before the first chapter and is short, else the file name."""
    if pieces and pieces[0][0] is None and len(pieces) > 1:
        first = pieces[0][1].split("\n", 1)[0].strip()
        if 0 < len(first) <= MAX_TITLE_CHARS:
            return first
    return Path(source).stem


def _warm_up() -> None:
    zero_width_pattern()  # build the Cf class once per worker, before the first file


def clean_corpus(config: Config, root: str | Path, *, workers: Optional[int] = None, force: bool = False,
                 show_progress: bool = False) -> StageResult:
    """Clean the raw corpus into the preprocessed JSONL and its two reports (skipped when up to date)."""
    root = Path(root).resolve()
    cfg, paths = config.clean, config.paths
    raw = paths.resolve(root, "raw_dir")
    files = list_raw_files(raw)
    out_path = paths.resolve(root, "preprocessed")
    reports = paths.resolve(root, "reports_dir")
    noise_path, summary_path = reports / NOISE_REPORT, reports / SUMMARY_REPORT
    outputs = [out_path, noise_path]

    build = Build(stage="clean", version=VERSION,
                  inputs=[tree_fingerprint(files, raw if raw.is_dir() else raw.parent, root)],
                  params=asdict(cfg))
    if not force and up_to_date(read_build(summary_path), build, outputs, root):
        return StageResult("clean", True, f"clean: up to date ({rel(out_path, root)} from the same "
                           f"{len(files)} raw files and clean settings)", tuple(outputs))

    noise = NoiseLog()
    seen: dict[bytes, str] = {}
    kept_sources: set[str] = set()
    per_source: dict[str, int] = {}
    lines_per_file: dict[str, int] = {}
    counts = dict(novels=0, documents_found=0, documents_kept=0, chars_raw=0, chars_clean=0)
    written: list[dict[str, Any]] = []

    summary_path.unlink(missing_ok=True)  # the marker goes first: an interrupted rebuild is redone next time
    total = sum(p.stat().st_size for p in files)
    workers = max(1, min(workers or available_cpus(), total // PARALLEL_MIN_BYTES))
    tasks = _tasks(files, raw if raw.is_dir() else raw.parent, cfg)
    with byte_bar(total, "clean", show_progress) as bar, open_output(out_path, root, written) as out, \
            worker_pool(workers, _warm_up) as pool:
        # Files are cleaned in parallel; duplicates and ids are decided here, in file order.
        for done in ordered_map(pool, _clean_task, tasks, 2 * workers):
            bar.update(done.bytes_read)
            noise.merge(done.log)
            lines_per_file[done.name] = lines_per_file.get(done.name, 0) + done.lines
            if done.last and lines_per_file[done.name] == 0:
                noise.add("empty_files", 1, done.name, {"text": done.name})
            counts["chars_raw"] += done.raw_chars
            for source, title, pieces in done.novels:
                counts["novels"] += 1
                for heading, doc in pieces:
                    counts["documents_found"] += 1
                    index = per_source.get(source, 0) + 1
                    per_source[source] = index
                    doc_id = f"{source}#{index:04d}"
                    if len(doc) < cfg.min_doc_chars:
                        noise.add("short_documents", 1, source,
                                  {"id": doc_id, "chars": len(doc), "text": visible(doc[:60])})
                        continue
                    if cfg.dedupe:
                        digest = hashlib.blake2b(doc.encode("utf-8"), digest_size=16).digest()
                        if digest in seen:
                            noise.add("duplicate_documents", 1, source, {"id": doc_id, "duplicate_of": seen[digest],
                                                                         "text": visible(doc[:60])})
                            continue
                        seen[digest] = doc_id
                    out.write_record({"id": doc_id, "source": source, "title": title, "chapter": heading, "text": doc})
                    kept_sources.add(source)
                    counts["documents_kept"] += 1
                    counts["chars_clean"] += len(doc)
        if counts["documents_kept"] == 0:
            raise UserError(f"{raw}: no documents left after cleaning ({counts['documents_found']} found: "
                            f"{noise.counts['short_documents']} shorter than clean.min_doc_chars={cfg.min_doc_chars}, "
                            f"{noise.counts['duplicate_documents']} duplicates, "
                            f"{noise.counts['bad_utf8_files']} files skipped as not UTF-8)")

    write_json_atomic(noise_path, {"kinds": noise.to_dict(FILE_KINDS + TEXT_KINDS + DOC_KINDS),
                                   "max_examples": 3, "unicode_form": cfg.unicode_form})
    written.append(fingerprint(noise_path, root))
    summary = {
        "stage": "clean",
        "raw": rel(raw, root),
        "files": len(files),
        "novels": counts["novels"],
        "sources_kept": len(kept_sources),
        "documents": {"found": counts["documents_found"], "kept": counts["documents_kept"],
                      "dropped_short": noise.counts["short_documents"],
                      "dropped_duplicate": noise.counts["duplicate_documents"]},
        "characters": {"raw": counts["chars_raw"], "clean": counts["chars_clean"]},
        "noise": {kind: noise.counts.get(kind, 0) for kind in FILE_KINDS + TEXT_KINDS + DOC_KINDS},
        "build": build.with_outputs(written).to_dict(),
    }
    write_json_atomic(summary_path, summary)
    message = (f"clean: {counts['documents_kept']} documents ({counts['chars_clean']:,} chars) from "
               f"{len(files)} files -> {rel(out_path, root)}; dropped {noise.counts['short_documents']} short, "
               f"{noise.counts['duplicate_documents']} duplicate")
    if noise.counts["bad_utf8_files"]:
        bad = sorted(noise.sources["bad_utf8_files"])
        names = ", ".join(bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        message += f"; {noise.counts['bad_utf8_files']} not UTF-8 ({cfg.on_bad_utf8}: {names})"
        print(f"warning: {noise.counts['bad_utf8_files']} raw file(s)/line(s) not UTF-8, "
              f"{'skipped' if cfg.on_bad_utf8 == 'skip' else 'decoded with U+FFFD'}: {names}", file=sys.stderr)
    return StageResult("clean", False, message, tuple(outputs), summary)
