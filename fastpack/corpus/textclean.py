"""Pure text cleaning: str -> str steps that count what they change in a `NoiseLog`.

The order matters and is fixed by `clean_text`:

1. line endings   CRLF, CR, U+2028/2029, U+0085 -> LF
2. html           script/style blocks, known tags (block tags -> newline), entities (&amp; &#7841; ...)
3. bom            U+FEFF anywhere (a BOM at the start, a zero-width no-break space elsewhere)
4. zero_width     every other format character (Unicode category Cf: U+200B..U+200F, U+00AD, U+2060 ...)
5. control        control characters (Cc) other than newline and tab
6. unicode        NFC (or NFKC): after 2-5, since an entity can decode to a decomposed letter and
                  a zero-width character between a letter and its accent blocks composition
7. url_lines      lines that are mostly URLs are dropped; URLs inside longer lines are removed (inline_urls)
8. boilerplate    whole lines matching `clean.boilerplate_pattern`
9. whitespace     runs of spaces/tabs/NBSP -> one space, spaces at line ends removed
10. blank_lines   runs of blank lines -> one blank line; the text is stripped

Each step counts occurrences, and keeps a few examples with invisible characters spelled
`<U+200B>` so the report can be read.
"""
from __future__ import annotations

import bisect
import functools
import html
import itertools
from html.entities import html5 as html5_entities
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

MAX_EXAMPLES = 3
_SNIPPET = 40

# Kinds in report order; `clean.py` adds the file- and document-level ones.
TEXT_KINDS = ("line_endings", "html_tags", "html_entities", "bom", "zero_width", "control",
              "unicode", "url_lines", "inline_urls", "boilerplate", "whitespace", "blank_lines")


@dataclass
class NoiseLog:
    """Per kind: occurrences, files (sources) touched, and the first few examples."""

    counts: Counter = field(default_factory=Counter)
    sources: dict[str, set] = field(default_factory=dict)
    examples: dict[str, list] = field(default_factory=dict)

    def add(self, kind: str, n: int, source: str, example: Optional[dict[str, Any]] = None) -> None:
        if n <= 0:
            return
        self.counts[kind] += n
        self.sources.setdefault(kind, set()).add(source)
        kept = self.examples.setdefault(kind, [])
        if example is not None and len(kept) < MAX_EXAMPLES:
            kept.append({"source": source, **example})

    def merge(self, other: "NoiseLog") -> None:
        """Add another log (a worker's) after this one, as if its events had come next."""
        self.counts.update(other.counts)
        for kind, sources in other.sources.items():
            self.sources.setdefault(kind, set()).update(sources)
        for kind, examples in other.examples.items():
            kept = self.examples.setdefault(kind, [])
            kept.extend(examples[: MAX_EXAMPLES - len(kept)])

    def to_dict(self, kinds: tuple[str, ...]) -> dict[str, Any]:
        return {kind: {"count": self.counts.get(kind, 0), "files": len(self.sources.get(kind, ())),
                       "examples": self.examples.get(kind, [])} for kind in kinds}


def visible(text: str) -> str:
    """Invisible and combining characters spelled <U+XXXX>, newlines as \\n, for reports."""
    out = []
    for ch in text:
        if ch == "\n":
            out.append("\\n")
        elif ch != " " and unicodedata.category(ch) in ("Cc", "Cf", "Mn", "Zs", "Zl", "Zp"):
            out.append(f"<U+{ord(ch):04X}>")
        else:
            out.append(ch)
    return "".join(out)


def _around(text: str, start: int, end: int) -> str:
    return visible(text[max(0, start - _SNIPPET // 2): end + _SNIPPET // 2])


def _sub(pattern: re.Pattern, repl: Any, text: str, kind: str, log: NoiseLog, source: str) -> str:
    """pattern.subn, counted under `kind`, with the first match as the example."""
    first = pattern.search(text)
    if first is None:
        return text
    new, n = pattern.subn(repl, text)
    log.add(kind, n, source, {"text": _around(text, first.start(), first.end())})
    return new


_LINE_ENDINGS = re.compile(r"\r\n?|[\u2028\u2029\x85]")

_TAG_NAMES = ("a|abbr|b|big|blockquote|body|br|center|code|div|em|font|h[1-6]|head|header|footer|hr|html|"
              "i|img|li|link|meta|nav|ol|p|pre|s|section|small|span|strike|strong|sub|sup|table|tbody|td|"
              "th|title|tr|u|ul|article")
_SCRIPT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_BLOCK_TAG = re.compile(r"<(?:br|/?p|/?div|/?li|/?h[1-6]|/?tr|hr)\b[^<>]*>", re.IGNORECASE)
_TAG = re.compile(rf"</?(?:{_TAG_NAMES})\b[^<>]*>", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")

_BOM = re.compile("\ufeff")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x84\x86-\x9f]")  # Cc minus \t \n (\r, \x85 went to line endings)

_URL = re.compile(
    r"(?:https?://|www\.)[^\s<>\"“”]+"
    r"|\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:com|net|org|vn|info|io|me|xyz|tv|cc|co)\b(?:/[^\s<>\"“”]*)?",
    re.IGNORECASE | re.ASCII,
)
# Finds the lines that may hold a URL 3x faster than _URL itself, which then runs on those lines only.
_URL_HINT = re.compile(r"https?://|www\.|\.(?:com|net|org|vn|info|io|me|xyz|tv|cc|co)\b", re.IGNORECASE | re.ASCII)
_WORD = re.compile(r"\w+")
URL_LINE_MAX_WORDS = 3  # a line with a URL and at most this many other words is a URL line

_HSPACE_CHARS = "\t \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
_HSPACE = re.compile(f"[{_HSPACE_CHARS}]{{2,}}|[\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_LINE_EDGE = re.compile(r"(?m)^ +| +$")
_BLANK_RUN = re.compile(r"\n{3,}")


@functools.cache
def zero_width_pattern() -> re.Pattern:
    """Every format character (Cf) but U+FEFF, which is counted apart as `bom`."""
    runs: list[list[int]] = []
    for c in range(sys.maxunicode + 1):
        if c != 0xFEFF and unicodedata.category(chr(c)) == "Cf":
            if runs and runs[-1][1] == c - 1:
                runs[-1][1] = c
            else:
                runs.append([c, c])
    # As ranges: a class of ~20 ranges scans 8x faster than one of ~160 single characters.
    return re.compile("[" + "".join(re.escape(chr(a)) + (f"-{re.escape(chr(b))}" if b > a else "") for a, b in runs) + "]")


@functools.cache
def compile_line_pattern(pattern: str, form: str) -> Optional[re.Pattern]:
    """A config regex, itself normalized like the text it runs on, matched per line, case-insensitively."""
    if not pattern:
        return None
    return re.compile(unicodedata.normalize(form, pattern), re.IGNORECASE | re.MULTILINE)


def _unescape(match: re.Match) -> str:
    """A numeric or exactly named entity; `&notanentity;` stays (html.unescape would give "¬anentity;")."""
    entity = match.group()
    if entity.startswith("&#"):
        return html.unescape(entity)
    return html5_entities.get(entity[1:], entity)


def strip_html(text: str, log: NoiseLog, source: str) -> str:
    if "<" in text:
        text = _sub(_SCRIPT, "", text, "html_tags", log, source)
        text = _sub(_COMMENT, "", text, "html_tags", log, source)
        text = _sub(_BLOCK_TAG, "\n", text, "html_tags", log, source)
        text = _sub(_TAG, "", text, "html_tags", log, source)
    if "&" in text:
        first = next((m for m in _ENTITY.finditer(text) if _unescape(m) != m.group()), None)
        if first is not None:
            count = 0

            def repl(m: re.Match) -> str:
                nonlocal count
                new = _unescape(m)
                count += new != m.group()
                return new

            new_text = _ENTITY.sub(repl, text)
            log.add("html_entities", count, source, {"text": _around(text, first.start(), first.end())})
            text = new_text
    return text


def normalize_unicode(text: str, form: str, log: NoiseLog, source: str) -> str:
    """NFC/NFKC; counts the lines it changed."""
    if unicodedata.is_normalized(form, text):
        return text
    changed, example, out = 0, None, []
    for line in text.split("\n"):
        new = unicodedata.normalize(form, line)
        if new != line:
            changed += 1
            if example is None:
                example = {"text": visible(line[:_SNIPPET]), "after": new[:_SNIPPET]}
        out.append(new)
    log.add("unicode", changed, source, example)
    return "\n".join(out)


def drop_lines(text: str, boilerplate: Optional[re.Pattern], log: NoiseLog, source: str) -> str:
    """URL lines and boilerplate lines out; URLs inside longer lines removed. Only lines with a hit are visited."""
    hits = [m.span() for m in _URL_HINT.finditer(text)]
    if boilerplate is not None:  # its leading \s* may start the match on a blank line above
        hits += [m.span() for m in boilerplate.finditer(text)]
    if not hits:
        return text
    lines = text.split("\n")
    starts = list(itertools.accumulate((len(line) + 1 for line in lines[:-1]), initial=0))
    flagged = {i for start, end in hits
               for i in range(bisect.bisect_right(starts, start) - 1, bisect.bisect_right(starts, end))}
    for i in sorted(flagged):
        line = lines[i]
        if boilerplate is not None and boilerplate.match(line):
            log.add("boilerplate", 1, source, {"text": visible(line[:2 * _SNIPPET])})
            lines[i] = None
            continue
        urls = _URL.findall(line)
        if urls:
            rest = _URL.sub(" ", line)
            if len(_WORD.findall(rest)) <= URL_LINE_MAX_WORDS:
                log.add("url_lines", 1, source, {"text": visible(line[:2 * _SNIPPET])})
                lines[i] = None
            else:
                log.add("inline_urls", len(urls), source, {"text": visible(line[:2 * _SNIPPET])})
                lines[i] = rest
    return "\n".join(line for line in lines if line is not None)


def clean_text(text: str, *, form: str = "NFC", strip_tags: bool = True,
               boilerplate: Optional[re.Pattern] = None, drop_boilerplate: bool = True,
               log: NoiseLog, source: str) -> str:
    """Run every step in order (see the module docstring); returns the clean text, stripped."""
    text = _sub(_LINE_ENDINGS, "\n", text, "line_endings", log, source)
    if strip_tags:
        text = strip_html(text, log, source)
    text = _sub(_BOM, "", text, "bom", log, source)
    text = _sub(zero_width_pattern(), "", text, "zero_width", log, source)
    text = _sub(_CONTROL, "", text, "control", log, source)
    text = normalize_unicode(text, form, log, source)
    if drop_boilerplate:
        text = drop_lines(text, boilerplate, log, source)
    text = _sub(_HSPACE, " ", text, "whitespace", log, source)
    text = _sub(_LINE_EDGE, "", text, "whitespace", log, source)
    text = _sub(_BLANK_RUN, "\n\n", text, "blank_lines", log, source)
    return text.strip()
