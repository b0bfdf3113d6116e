"""Corpus preparation: raw novels -> clean JSONL -> train/val/test splits -> SentencePiece -> token JSONL.

One function per stage, each taking the resolved `Config` and the data root (the folder holding
config/), each skipping its work when its outputs are up to date (`force=True` rebuilds) and
returning a `StageResult`. `python -m fastpack.corpus` is the command line over them.
"""
from fastpack.corpus.build import StageResult
from fastpack.corpus.clean import clean_corpus
from fastpack.corpus.encode import tokenize_splits
from fastpack.corpus.pipeline import prepare_corpus
from fastpack.corpus.sample import SAMPLE_VOCAB_SIZE, SampleCorpus, write_sample_corpus
from fastpack.corpus.split import assign_splits, split_corpus
from fastpack.corpus.tokenizer import train_tokenizer

__all__ = [
    "StageResult",
    "clean_corpus",
    "split_corpus",
    "assign_splits",
    "train_tokenizer",
    "tokenize_splits",
    "prepare_corpus",
    "write_sample_corpus",
    "SampleCorpus",
    "SAMPLE_VOCAB_SIZE",
]
