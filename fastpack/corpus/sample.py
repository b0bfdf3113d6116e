"""A generated sample corpus: Vietnamese-looking novels with chapters and deliberate noise, no download.

`write_sample_corpus(out)` writes the same bytes for the same (size_mb, seed, bad_utf8): about
`size_mb` MB of UTF-8 text in `NOVELS` novels (`NN_slug.txt`), each with a title line, an author
line and chapters (`Chương N: ...`, one novel with `Hồi N`, one with `Quyển` volume headings,
one with upper-case roman numerals). The words are real Vietnamese words plus syllables built from
Vietnamese onsets, rhymes and the five tone marks, so SentencePiece sees a realistic alphabet.

Noise for the cleaner, at fixed places: one novel entirely in NFD, a BOM + CRLF file, a file with
HTML tags and entities, zero-width characters and stray BOMs, control characters, tabs/NBSP/
double spaces/trailing spaces and runs of blank lines, URL and boilerplate lines ("Nguồn: https://...",
"Đọc truyện tại www..."), a URL inside a long paragraph, a repeated chapter, an NFD copy of a whole
novel (all its chapters are duplicates once normalized), a too-short chapter and a too-short file.
With `bad_utf8=True` one more file is written in the Windows-1258 code page (not UTF-8).
"""
from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from fastpack.atomic import write_bytes_atomic
from fastpack.errors import UserError

NOVELS = 12
DEFAULT_SIZE_MB = 3.0
CHAPTER_CHARS = (5000, 11000)
SAMPLE_VOCAB_SIZE = 3000  # a vocabulary the default sample supports (the config default, 32000, is for real corpora)

_COMMON = (
    "tôi anh em chị ông bà cô chú bác người ta họ nó mình chúng "
    "là có không được đã đang sẽ vẫn còn cũng lại rồi thì mà nhưng vì nên nếu khi lúc "
    "của cho với trong ngoài trên dưới về đến từ tới qua theo như cùng bằng "
    "một hai ba bốn năm mười trăm nghìn những các mỗi mọi nhiều ít "
    "nói nghĩ biết thấy nhìn nghe đi đứng ngồi chạy cười khóc hỏi đáp gọi chờ đợi làm ăn uống ngủ "
    "nhà cửa sân vườn làng phố chợ đường sông núi rừng biển trời mây gió mưa nắng trăng sao "
    "ngày đêm sáng chiều tối sớm muộn năm tháng mùa xuân hạ thu đông "
    "đẹp xấu lớn nhỏ cao thấp xa gần mới cũ trắng đen đỏ xanh vàng tím nhanh chậm "
    "lòng tim mắt tay chân đầu mặt tóc giọng tiếng lời câu chuyện "
    "thương nhớ yêu ghét buồn vui sợ giận mừng lo ngạc nhiên im lặng "
    "bỗng nhiên chợt dường như hình như có lẽ thật sự quả nhiên tuy nhiên "
    "kiếm đao thương cung ngựa thuyền đèn nến chén trà rượu cơm áo nón "
    "tông môn đạo sư phụ đệ tử hoàng đế quan binh tướng quân giang hồ "
    "ấy này kia đó đây nào gì sao vậy thế à ư nhé nhỉ chứ"
).split()
_FAMILY = "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý Tô Mai Lâm Trịnh".split()
_GIVEN = ("Minh Lan Phong Vân Tuấn Hương Dũng Quyên Khải Thảo Hiếu Ngọc Long Hạnh Thành Linh Quang Yến "
          "Bảo Châu Hải Đức Nguyệt Thiện Tùng Trâm Hùng Diệp").split()
_PLACES = ("Hà Nội", "Huế", "Sài Gòn", "Hội An", "Đà Lạt", "sông Hương", "núi Ngọc Linh", "làng Đông Sơn",
           "Thanh Vân tông", "chùa Thiên Mụ", "phố cổ", "bến Nhà Rồng", "đèo Hải Vân", "Vạn Kiếm sơn trang")
_TITLES = ("Kiếm Khách Giang Hồ", "Mùa Thu Hà Nội", "Bóng Trăng Trên Sông", "Người Lái Đò Sông Đà",
           "Ngọn Đèn Cuối Phố", "Tiếng Chuông Chùa Cổ", "Đường Về Quê Mẹ", "Gió Bắc Thổi Qua Đèo",
           "Hoa Sen Trắng", "Thanh Vân Kiếm Pháp", "Cô Gái Làng Chài", "Ánh Sáng Phương Đông")
_SLUGS = ("kiem_khach_giang_ho", "mua_thu_ha_noi", "bong_trang_tren_song", "nguoi_lai_do_song_da",
          "ngon_den_cuoi_pho", "tieng_chuong_chua_co", "duong_ve_que_me", "gio_bac_thoi_qua_deo",
          "hoa_sen_trang", "thanh_van_kiem_phap", "co_gai_lang_chai", "anh_sang_phuong_dong")
_ONSETS = "b c ch d đ g gi h kh l m n ng nh ph qu r s t th tr v x".split() + [""]
# (rhyme, index of the vowel that takes the tone mark)
_RHYMES = [("a", 0), ("ai", 0), ("am", 0), ("an", 0), ("ang", 0), ("anh", 0), ("ao", 0), ("au", 0), ("ay", 0),
           ("ăm", 0), ("ăn", 0), ("ăng", 0), ("âm", 0), ("ân", 0), ("âu", 0), ("ây", 0), ("e", 0), ("em", 0),
           ("en", 0), ("eo", 0), ("ê", 0), ("ên", 0), ("ênh", 0), ("êu", 0), ("i", 0), ("im", 0), ("in", 0),
           ("inh", 0), ("iêu", 1), ("iên", 1), ("o", 0), ("oa", 1), ("oai", 1), ("oan", 1), ("oang", 1),
           ("oi", 0), ("om", 0), ("on", 0), ("ong", 0), ("ô", 0), ("ôi", 0), ("ôm", 0), ("ôn", 0), ("ông", 0),
           ("ơ", 0), ("ơi", 0), ("ơn", 0), ("u", 0), ("ua", 0), ("ui", 0), ("um", 0), ("un", 0), ("ung", 0),
           ("uôi", 1), ("uôn", 1), ("uông", 1), ("ư", 0), ("ưa", 0), ("ưng", 0), ("ươi", 1), ("ương", 1), ("ưu", 0)]
_STOPS = [("at", 0), ("ac", 0), ("ăt", 0), ("ăc", 0), ("ât", 0), ("âc", 0), ("ep", 0), ("et", 0), ("êt", 0),
          ("ich", 0), ("it", 0), ("ip", 0), ("oc", 0), ("ot", 0), ("ôc", 0), ("ôt", 0), ("ơt", 0), ("uc", 0),
          ("ut", 0), ("ưc", 0), ("ươc", 1), ("uôc", 1), ("iêt", 1), ("ach", 0)]
_TONES = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")  # ngang huyền sắc hỏi ngã nặng
_ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\u00ad")


@dataclass(frozen=True)
class SampleCorpus:
    out_dir: Path
    files: tuple[Path, ...]
    bytes: int


def _syllable(onset: str, rhyme: str, at: int, tone: str) -> str:
    """onset + rhyme with the tone mark on its main vowel, spelled as Vietnamese does (k/gh/ngh before i, e, ê)."""
    if rhyme[0] in "iêe":
        onset = {"c": "k", "g": "gh", "ng": "ngh"}.get(onset, onset)
    if onset == "gi" and rhyme[0] == "i" or onset == "qu" and rhyme[0] in "uoô":
        onset = ""
    return unicodedata.normalize("NFC", onset + rhyme[: at + 1] + tone + rhyme[at + 1:])


def _lexicon(rng: random.Random) -> tuple[list[str], list[float]]:
    """Real common words first, then generated one- and two-syllable words; Zipf weights by rank."""
    syllables = sorted({_syllable(o, r, at, t) for o in _ONSETS for r, at in _RHYMES for t in _TONES}
                       | {_syllable(o, r, at, t) for o in _ONSETS for r, at in _STOPS for t in _TONES[2::3]})
    rng.shuffle(syllables)
    words = list(dict.fromkeys(_COMMON))
    words += syllables[:2500]
    words += [f"{rng.choice(syllables)} {rng.choice(syllables)}" for _ in range(1500)]
    weights = [1.0 / (rank + 8) ** 1.05 for rank in range(len(words))]
    return words, weights


class _Writer:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words, weights = _lexicon(rng)
        total, acc = sum(weights), 0.0
        self.cum = []
        for w in weights:
            acc += w / total
            self.cum.append(acc)
        self.names = [f"{f} {g}" for f in _FAMILY for g in _GIVEN]

    def sentence(self, cast: list[str]) -> str:
        rng = self.rng
        words = rng.choices(self.words, cum_weights=self.cum, k=rng.randint(6, 22))
        if rng.random() < 0.45:
            words.insert(rng.randrange(len(words)), rng.choice(cast))
        if rng.random() < 0.15:
            words.insert(rng.randrange(len(words)), rng.choice(_PLACES))
        for i in rng.sample(range(len(words) - 1), rng.randint(0, 2)):
            words[i] += ","
        text = " ".join(words)
        return text[0].upper() + text[1:] + rng.choice((".", ".", ".", "!", "?", "…"))

    def paragraph(self, cast: list[str]) -> str:
        rng = self.rng
        if rng.random() < 0.25:
            return "- " + " ".join(self.sentence(cast) for _ in range(rng.randint(1, 2)))
        if rng.random() < 0.1:
            return f"{rng.choice(cast)} nói: “{self.sentence(cast)}”"
        return " ".join(self.sentence(cast) for _ in range(rng.randint(2, 6)))

    def chapter_body(self, cast: list[str], chars: int) -> list[str]:
        paragraphs, size = [], 0
        while size < chars:
            paragraphs.append(self.paragraph(cast))
            size += len(paragraphs[-1]) + 2
        return paragraphs


def _heading(style: str, n: int, title: str) -> str:
    if style == "hoi":
        return f"Hồi {n}: {title}"
    if style == "roman":
        return f"CHƯƠNG {_roman(n)} - {title.upper()}"
    return f"Chương {n}: {title}"


def _roman(n: int) -> str:
    out = ""
    for value, numeral in ((100, "C"), (90, "XC"), (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out, n = out + numeral, n - value
    return out


def _novel(w: _Writer, index: int, target: int) -> str:
    """One novel's text (NFC, LF) with the noise meant for every novel: zero-width chars, spaces, URL lines."""
    rng = w.rng
    cast = rng.sample(w.names, 6)
    style = {3: "hoi", 7: "roman"}.get(index, "chuong")
    lines = [_TITLES[index], f"Tác giả: {rng.choice(w.names)}", ""]
    # Chapters shrink with the novel, so a small sample still has several chapters per novel.
    chapter_chars = (max(300, min(CHAPTER_CHARS[0], target // 10)), max(600, min(CHAPTER_CHARS[1], target // 5)))
    n, size = 0, 0
    while size < target or n < 5:
        n += 1
        if index == 5 and n in (1, 6):
            lines += [f"Quyển {1 if n == 1 else 2}", ""]
        heading = _heading(style, n, " ".join(rng.choices(w.words[:300], k=rng.randint(2, 6))).capitalize())
        body = w.chapter_body(cast, rng.randint(*chapter_chars))
        for k in range(len(body)):
            r = rng.random()
            if r < 0.03:  # an invisible character inside a word
                p = body[k]
                i = rng.randrange(1, len(p))
                body[k] = p[:i] + rng.choice(_ZERO_WIDTH) + p[i:]
            elif r < 0.05:
                body[k] = body[k].replace(" ", "  ", 2)
            elif r < 0.07:
                body[k] = "\t" + body[k] + "   "
            elif r < 0.08:
                body[k] = body[k].replace(" ", "\u00a0", 1)
        lines += [heading, ""] + [p + "\n" for p in body]
        if n % 4 == 0:
            lines += [f"Nguồn: https://truyen.example.vn/{_SLUGS[index].replace('_', '-')}/chuong-{n}", ""]
        if n % 7 == 0:
            lines += ["Đọc truyện tại www.example.vn", "", "", "", ""]
        if n % 9 == 0:
            lines += ["Chúc các bạn đọc truyện vui vẻ!", ""]
        size += sum(len(x) for x in body)
    return "\n".join(lines) + "\n"


def _inject(index: int, text: str) -> bytes:
    """The per-file noise, at fixed novels."""
    if index == 1:  # the whole novel decomposed (NFD), as some Vietnamese editors save it
        text = unicodedata.normalize("NFD", text)
    if index == 2:  # a BOM and Windows line endings
        return ("\ufeff" + text).replace("\n", "\r\n").encode("utf-8")
    if index == 4:  # a scraped web page: tags, entities
        paragraphs = text.split("\n\n")
        for k in range(3, len(paragraphs), 5):
            paragraphs[k] = f"<p>{paragraphs[k]}</p>"
        for k in range(4, len(paragraphs), 11):
            paragraphs[k] = paragraphs[k].replace(" ", " &nbsp;", 1).replace(",", " &amp;", 1) + "<br/>"
        for k in range(6, len(paragraphs), 13):
            paragraphs[k] = f"<i>{paragraphs[k]}</i> &quot;tr&#7841;i&quot; &#x1EA1;"
        text = "\n\n".join(paragraphs)
    if index == 6:  # stray BOMs and control characters mid-text, a form feed between chapters
        text = text.replace("Chương 3:", "\x0cChương 3:").replace(". ", ".\ufeff ", 5).replace("! ", "!\x07 ", 3)
        text = text.replace("Chương 2:", "\u200bChương 2:")
    if index == 8:  # a URL inside a long paragraph (the paragraph stays, the URL goes)
        text = text.replace("\n\n", "\n\nXem bản đồ tại https://maps.example.com/hue?q=1 rồi cùng nhau lên đường "
                            "về phía núi, trời đã sáng hẳn và gió thổi nhẹ.\n\n", 1)
    if index == 9:  # a chapter uploaded twice, and a final chapter with a single line
        chapters = text.split("\nChương ")
        text = "\nChương ".join(chapters[:4] + [chapters[3]] + chapters[4:])
        text += "\nChương 999: Lời cuối\n\nHết.\n"
    return text.encode("utf-8")


def write_sample_corpus(out_dir: str | Path, *, size_mb: float = DEFAULT_SIZE_MB, seed: int = 0,
                        bad_utf8: bool = False) -> SampleCorpus:
    """Write the sample novels into `out_dir` (created); same arguments, same bytes."""
    if not 0 < size_mb <= 10_000:
        raise UserError(f"sample: --size-mb must be > 0 (and at most 10000), got {size_mb}")
    out_dir = Path(out_dir)
    rng = random.Random(f"fastpack-sample-{seed}")
    w = _Writer(rng)
    total = size_mb * 1_000_000 / 1.35  # characters; Vietnamese NFC averages ~1.35 UTF-8 bytes per char
    shares = [1.0 + 0.8 * ((i * 7) % 5) / 4 for i in range(NOVELS)]  # unequal sizes, fixed
    files = []
    for i in range(NOVELS):
        text = _novel(w, i, int(total * shares[i] / sum(shares)))
        path = out_dir / f"{i + 1:02d}_{_SLUGS[i]}.txt"
        write_bytes_atomic(path, _inject(i, text))
        files.append(path)
        if i == NOVELS - 1:  # the same novel saved again in NFD: every chapter is a duplicate once normalized
            copy = out_dir / f"{i + 1:02d}_{_SLUGS[i]}_ban_sao.txt"
            write_bytes_atomic(copy, unicodedata.normalize("NFD", text).encode("utf-8"))
            files.append(copy)
    note = out_dir / "00_ghi_chu.txt"  # too short to be a document
    write_bytes_atomic(note, "Ghi chú: bản dịch chưa hoàn chỉnh.\n".encode("utf-8"))
    files.append(note)
    if bad_utf8:
        legacy = out_dir / "99_ban_cu_cp1258.txt"
        old = unicodedata.normalize("NFD", _novel(w, 0, 3000))
        write_bytes_atomic(legacy, old.encode("cp1258", errors="replace"))
        files.append(legacy)
    files.sort()
    return SampleCorpus(out_dir, tuple(files), sum(p.stat().st_size for p in files))
