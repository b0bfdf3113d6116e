"""Fixtures for the trainer tests: hand-written packed splits (meta per fastpack.meta's docstring),
a tiny word-level SentencePiece model, and a complete data root with config/, tokenizer/, packed/."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import numpy as np
import pytest

from trainer.config import RunConfig, save_config
from fastpack.tokenizer_info import TokenizerInfo, save_tokenizer_info

try:
    import torch
except ModuleNotFoundError:  # a packer-only install: each test module here is reported skipped, not an error
    torch = None

    class _NeedsTorch(pytest.Module):
        def collect(self):
            pytest.skip("the trainer tests need torch, which is not installed", allow_module_level=True)

    def pytest_pycollect_makemodule(module_path, parent):
        return _NeedsTorch.from_parent(parent, path=module_path)

REPO = Path(__file__).resolve().parents[2]
PAD, UNK, BOS, EOS = 0, 1, 2, 3
SEQ_LEN = 32

# Six "documents" in a fixed cycle: given a few tokens of context every next token is determined.
SENTENCES = [
    "the cat sat on the mat",
    "a dog ran in the park",
    "birds sing at dawn near the river",
    "rain falls on the old roof",
    "my friend reads a long book",
    "we walk home after school",
]


def write_packed(
    folder: Path,
    name: str,
    windows: np.ndarray,
    *,
    stride: Optional[int] = None,
    mode: str = "concat",
    pad_id: Optional[int] = PAD,
    eos_id: Optional[int] = EOS,
    bos_id: Optional[int] = None,
    vocab_size: Optional[int] = None,
    fmt: str = "npy",
    segments: Optional[list[list[int]]] = None,
    shard: Optional[tuple[int, int]] = None,
) -> Path:
    """Write `{name}.npy|.pt` + `{name}.meta.json` (+ `{name}.docs.npz` when `segments` is given); returns the array path."""
    folder.mkdir(parents=True, exist_ok=True)
    windows = np.ascontiguousarray(windows)
    n, seq_len = windows.shape
    if fmt == "pt":
        array_path = folder / f"{name}.pt"
        torch.save(torch.from_numpy(windows.astype(np.int32)), array_path)
    else:
        array_path = folder / f"{name}.npy"
        np.save(array_path, windows)
    meta = {
        "format_version": 1, "fastpack_version": "0.1.0", "name": name,
        "files": {"npy": array_path.name if fmt == "npy" else None, "pt": array_path.name if fmt == "pt" else None},
        "shape": [n, seq_len], "dtype": str(windows.dtype), "seq_len": seq_len, "stride": stride or seq_len,
        "mode": mode, "eos_id": eos_id, "bos_id": bos_id, "pad_id": pad_id, "vocab_size": vocab_size,
        "counts": {"windows": n, "tokens_out": int(n * seq_len)}, "sources": [], "params": {},
        "shard": {"index": shard[0], "count": shard[1]} if shard else None, "config": None,
    }
    if segments is not None:
        assert len(segments) == n
        offsets = np.cumsum([0] + [len(s) for s in segments]).astype(np.int64)
        lengths = np.array([x for s in segments for x in s], dtype=np.int32)
        np.savez(folder / f"{name}.docs.npz", window_offsets=offsets, segment_lengths=lengths)
        meta["docs"] = f"{name}.docs.npz"
    (folder / f"{name}.meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return array_path


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine a second spinning thread only adds jitter."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def helpers() -> SimpleNamespace:
    """The module's helper functions, for test files (conftest is not importable under --import-mode=importlib)."""
    return SimpleNamespace(write_packed=write_packed, make_config=make_config, token_stream=token_stream,
                           windows_of=windows_of, SEQ_LEN=SEQ_LEN, PAD=PAD, EOS=EOS, BOS=BOS, SENTENCES=SENTENCES)


@pytest.fixture(scope="session")
def sp_model_file(tmp_path_factory) -> Path:
    """A word-level SentencePiece model over SENTENCES with pad 0, unk 1, bos 2, eos 3."""
    import sentencepiece as spm

    folder = tmp_path_factory.mktemp("sp")
    prefix = folder / "sp_model"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES * 4), model_prefix=str(prefix), vocab_size=64, model_type="word",
        pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS, hard_vocab_limit=False, minloglevel=2,
    )
    return prefix.with_suffix(".model")


def token_stream(sp_model_file: Path, n_docs: int, offset: int = 0) -> np.ndarray:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(sp_model_file))
    ids: list[int] = []
    for i in range(offset, offset + n_docs):
        ids += sp.encode(SENTENCES[i % len(SENTENCES)]) + [EOS]
    return np.array(ids, dtype=np.int32)


def windows_of(stream: np.ndarray, seq_len: int = SEQ_LEN, stride: Optional[int] = None) -> np.ndarray:
    stride = stride or seq_len
    starts = range(0, len(stream) - seq_len + 1, stride)
    return np.stack([stream[s : s + seq_len] for s in starts]).astype(np.int32)


def make_config(**training) -> RunConfig:
    """The tiny preset on 32-token windows, sized for a CPU test run of seconds."""
    values = dict(
        batch_size=8, grad_accum=1, lr=3e-3, min_lr=3e-4, warmup_steps=10, max_steps=60, eval_interval=20,
        eval_batches=2, log_interval=1, checkpoint_interval=1000, num_workers=0, sample_prompts=["the cat"],
        sample_tokens=8, weight_decay=0.0,
    )
    values.update(training)
    return RunConfig().replace("packing", seq_len=SEQ_LEN).replace("model", preset="tiny").replace("training", **values)


@pytest.fixture
def lm_root(tmp_path, sp_model_file) -> Path:
    """ROOT/config/training_config.json, ROOT/tokenizer/{sp_model.model, tokenizer_info.json},
    ROOT/dataset/packed/{train,val,test}: 1200 training documents, 120 val and test ones."""
    import sentencepiece as spm

    root = tmp_path / "root"
    save_config(make_config(), root / "config" / "training_config.json")
    tok = root / "tokenizer"
    tok.mkdir(parents=True)
    shutil.copy(sp_model_file, tok / "sp_model.model")
    vocab = spm.SentencePieceProcessor(model_file=str(sp_model_file)).get_piece_size()
    save_tokenizer_info(TokenizerInfo(vocab_size=vocab, pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS), tok / "tokenizer_info.json")
    packed = root / "dataset" / "packed"
    write_packed(packed, "train", windows_of(token_stream(sp_model_file, 1200)), vocab_size=vocab)
    write_packed(packed, "val", windows_of(token_stream(sp_model_file, 120, offset=1)), vocab_size=vocab)
    write_packed(packed, "test", windows_of(token_stream(sp_model_file, 120, offset=2)), vocab_size=vocab)
    return root
