"""A data root for a short real training run (benchmarks/gpu_check.sh): synthetic token JSONL packed by
fastpack (train and val, with the boundaries sidecar), a tokenizer_info.json for its 32k vocabulary, a config.

    python -m benchmarks.gpu_smoke_root --root DIR [--tokens 20M] [--seq-len 1024]

No SentencePiece model: the run notes that samples are skipped. Ids are uniform, so the loss stays
near ln(32000); the run measures speed, memory and the code paths, not learning.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from benchmarks.datagen import VOCAB, cached_corpus, parse_count

EOS = 0  # the generated ids include 0 as well: irrelevant to speed, and the sidecar records the real boundaries


def build_root(root: Path, tokens: int, seq_len: int, data_dir: Path) -> Path:
    from fastpack.pack import pack_sequences
    from fastpack.tokenizer_info import TokenizerInfo, save_tokenizer_info
    from trainer.config import RunConfig, save_config

    packed = root / "dataset" / "packed"
    for name, n, seed in (("train", tokens, 0), ("val", max(tokens // 20, 4 * seq_len), 1)):
        corpus = cached_corpus(data_dir, n, seed=seed)
        pack_sequences(corpus["path"], packed / f"{name}.npy", seq_len=seq_len, eos_id=EOS, vocab_size=VOCAB)
    save_tokenizer_info(TokenizerInfo(vocab_size=VOCAB, eos_id=EOS), root / "tokenizer" / "tokenizer_info.json")
    config = (RunConfig().replace("packing", seq_len=seq_len)
              .replace("training", eval_interval=50, eval_batches=4, log_interval=10, sample_prompts=[],
                       checkpoint_interval=100000))
    path = root / "config" / "training_config.json"
    save_config(config, path)
    return path


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_smoke_root", description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--tokens", default="20M")
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "fastpack-bench")
    args = p.parse_args()
    print(build_root(args.root, parse_count(args.tokens), args.seq_len, args.data_dir))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
