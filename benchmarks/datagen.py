"""Deterministic synthetic token JSONL shaped like a tokenized novel corpus.

Ids uniform over a 32k vocab (5.7 bytes a token with the text field, the shape of the issue's
measurements; a real tokenizer's skew to small ids only makes parsing cheaper), document lengths log-normal with a median of 1,500 tokens, and a text field beside the ids
(with escapes and Vietnamese diacritics, so the reader's string path is exercised):
100M tokens is about 570 MB.

    python -m benchmarks.datagen --tokens 100M --out /tmp/bench_100M.jsonl
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import orjson

from fastpack.atomic import atomic_path

VOCAB = 32000
MEDIAN_DOC = 1500
_TEXTS = [
    "Chương {k}: Người đi qua \"cầu đá\" lúc trời vừa sáng.",
    "Đêm ấy, gió thổi mạnh.\nBà kể chuyện xưa: {k} năm về trước…",
    "Ông Tư nói: \u201cĐừng sợ!\u201d rồi bước tiếp\ttrên đường làng số {k}.",
]


def parse_count(text: str) -> int:
    """`100M`, `10k`, `2.5G` or a plain number."""
    scale = {"k": 10**3, "m": 10**6, "g": 10**9}.get(text[-1].lower(), 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def document_lengths(n_tokens: int, rng: np.random.Generator) -> np.ndarray:
    lengths = []
    total = 0
    while total < n_tokens:
        chunk = np.maximum(1, rng.lognormal(np.log(MEDIAN_DOC), 0.6, size=4096).astype(np.int64))
        lengths.append(chunk)
        total += int(chunk.sum())
    lengths = np.concatenate(lengths)
    cut = int(np.searchsorted(np.cumsum(lengths), n_tokens))
    lengths = lengths[: cut + 1]
    lengths[-1] -= int(lengths.sum()) - n_tokens
    return lengths[lengths > 0]


def token_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, VOCAB, size=n, dtype=np.int32)


def write_token_jsonl(path: str | Path, n_tokens: int, seed: int = 0, block_docs: int = 2048) -> int:
    """Write about n_tokens tokens of synthetic documents; returns the number of documents."""
    rng = np.random.default_rng(seed)
    lengths = document_lengths(n_tokens, rng)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        for first in range(0, lengths.size, block_docs):
            block = lengths[first: first + block_docs]
            ids = token_ids(int(block.sum()), rng)
            ends = np.cumsum(block)
            lines = []
            for k, (a, b) in enumerate(zip(ends - block, ends)):
                doc = first + k
                text = _TEXTS[doc % len(_TEXTS)].format(k=doc)
                lines.append(orjson.dumps({"id": doc, "text": text, "input_ids": ids[a:b]},
                                          option=orjson.OPT_SERIALIZE_NUMPY))
            f.write(b"\n".join(lines) + b"\n")
    return int(lengths.size)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.datagen", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", default="10M", help="how many tokens (e.g. 10M, 100M)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    docs = write_token_jsonl(args.out, parse_count(args.tokens), args.seed)
    print(f"{args.out}: {docs:,} documents, {Path(args.out).stat().st_size / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
