"""Packed windows as a torch `Dataset`: index math plus one read from a memory map.

A split is one array (`train.npy` / `train.pt`) or several shards (`train-00000-of-00004.npy`,
...), each beside its `.meta.json` (see `fastpack.meta`). The dataset never reads a split into
RAM: `.npy` opens with `np.load(mmap_mode="r")`, `.pt` with `torch.load(mmap=True)`, lazily in
each DataLoader worker (the open maps are dropped when the dataset is pickled to a worker).

An item is a dict of int64 tensors of length seq_len:
- `input_ids`: the window;
- `labels`: the window with padding (and, on request, the overlap with the previous window) set
  to -100; the model shifts them (Hugging Face convention);
- with `document_attention`, also `doc_ids` (the segment of each position; padding is one more
  segment) and `position_ids` (restarted at 0 for every segment), from the boundaries sidecar.

Training order: an endless stream of permutations, permutation e drawn from (seed, e). Global
batch j is stream[j*B*W : (j+1)*B*W] and rank r takes its r-th slice of B, so a run resumes from
one integer (the samples consumed) without reading the skipped batches, even with another world size.
"""
from __future__ import annotations

import glob as globlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from fastpack.errors import UserError
from fastpack.meta import PackMeta, meta_path_for
from fastpack.modes import MODES

from trainer.model import IGNORE_INDEX

_SHARD_RE = re.compile(r"-\d{5}-of-\d{5}$")
_SCAN_ROWS = 1 << 22  # tokens per chunk when scanning a split for its largest id


@dataclass(frozen=True)
class Shard:
    """One packed array file, its meta, and (when written) its boundaries sidecar.

    The windows' layout (seq_len, stride, mode, pad) is the meta's: the data, not the config, says it.
    """

    path: Path
    meta_path: Path
    meta: PackMeta
    docs_path: Optional[Path]

    @property
    def n_windows(self) -> int:
        return self.meta.shape[0]

    @property
    def seq_len(self) -> int:
        return self.meta.shape[1]

    @property
    def stride(self) -> int:
        return self.meta.stride

    @property
    def mode(self) -> str:
        return self.meta.mode

    @property
    def pad_id(self) -> Optional[int]:
        return self.meta.pad_id


def _open_array(path: Path) -> Any:
    if path.suffix == ".pt":
        return torch.load(path, mmap=True, weights_only=True, map_location="cpu")
    return np.load(path, mmap_mode="r")


def load_shard(array_or_meta: str | Path) -> Shard:
    """A shard from its array path (`train.npy`, `train.pt`) or its meta path; checks the array against its meta."""
    path = Path(array_or_meta)
    meta_path = path if path.name.endswith(".meta.json") else meta_path_for(path)
    if not meta_path.is_file() and path.is_file():
        raise UserError(f"{path}: no {meta_path.name} beside it (an interrupted pack? re-pack the split)")
    meta = PackMeta.read(meta_path)
    if path == meta_path:
        candidates = [meta_path.parent / meta.files[k] for k in ("npy", "pt") if meta.files.get(k)]
        existing = [c for c in candidates if c.is_file()]
        if not existing:
            names = ", ".join(c.name for c in candidates) or "no array named in its files"
            raise UserError(f"{meta_path}: its array is missing ({names})")
        path = existing[0]
    array = _open_array(path)
    if tuple(array.shape) != meta.shape or meta.seq_len != meta.shape[1]:
        raise UserError(f"{path}: array shape {tuple(array.shape)} does not match its meta {meta.shape}")
    del array
    docs_path = meta_path.parent / meta.docs if meta.docs else None
    return Shard(path=path, meta_path=meta_path, meta=meta, docs_path=docs_path)


def find_split(packed_dir: str | Path, name: str, *, required: bool) -> Optional[list[Shard]]:
    """`{name}.meta.json`, else the shards `{name}-NNNNN-of-NNNNN.meta.json`; None (or an error) when absent."""
    packed_dir = Path(packed_dir)
    single = packed_dir / f"{name}.meta.json"
    if single.is_file():
        return [load_shard(single)]
    shard_metas = sorted(p for p in packed_dir.glob(f"{name}-*-of-*.meta.json") if _SHARD_RE.search(p.name[: -len(".meta.json")]))
    if shard_metas:
        return [load_shard(p) for p in shard_metas]
    for suffix in (".npy", ".pt"):
        if (packed_dir / f"{name}{suffix}").is_file():
            raise UserError(f"{packed_dir / (name + suffix)}: no {name}.meta.json beside it (an interrupted pack? re-pack the split)")
    if required:
        raise UserError(
            f"{packed_dir}: no packed {name} split ({name}.meta.json with {name}.npy or {name}.pt, "
            f"or {name}-00000-of-0000N shards); pack it first with python -m fastpack"
        )
    return None


def shards_from_spec(spec: str | Path | Sequence[str | Path]) -> list[Shard]:
    """A list of array/meta paths, a glob pattern, a single path, or a packed folder's `train` split."""
    if isinstance(spec, (str, Path)):
        text = str(spec)
        if any(ch in text for ch in "*?["):
            paths = sorted(p for p in globlib.glob(text) if p.endswith((".npy", ".pt")))
            if not paths:
                raise UserError(f"{text}: no .npy or .pt file matches")
            return [load_shard(p) for p in paths]
        if Path(text).is_dir():
            return find_split(text, "train", required=True)  # type: ignore[return-value]
        return [load_shard(text)]
    return [load_shard(p) for p in spec]


def max_token_id(shard: Shard) -> int:
    """The largest id in the array, read in chunks (bounded memory)."""
    array = _open_array(shard.path)
    rows = max(1, _SCAN_ROWS // max(1, shard.seq_len))
    best = -1
    for start in range(0, shard.n_windows, rows):
        chunk = array[start : start + rows]
        if len(chunk):
            best = max(best, int(chunk.max()))
    return best


def check_split(shards: Sequence[Shard], *, seq_len: int, vocab_size: int, log=print) -> None:
    """The windows fit the model: length == context, every id < vocab_size (trusting a meta that says so)."""
    for shard in shards:
        if shard.seq_len != seq_len:
            raise UserError(
                f"{shard.meta_path}: windows of seq_len {shard.seq_len}, but the model's context is {seq_len} "
                f"(model.context_len / packing.seq_len: leave both null to take the windows' length, or re-pack "
                f"with --seq-len {seq_len})"
            )
        meta_vocab = shard.meta.vocab_size
        if meta_vocab is not None and meta_vocab <= vocab_size:
            if meta_vocab != vocab_size:
                log(f"note: {shard.meta_path.name} was packed for vocab_size {meta_vocab}, the model has {vocab_size}")
            continue  # the packer rejected every id >= meta_vocab
        if shard.n_windows == 0:
            continue
        top = max_token_id(shard)
        if top >= vocab_size:
            raise UserError(
                f"{shard.path}: token id {top} >= the vocabulary size {vocab_size} "
                f"(tokenizer_info.json / model.vocab_size); packed with another tokenizer?"
            )


class PackedDataset(Dataset):
    """Windows of one or more shards as one dataset (shard k's windows follow shard k-1's)."""

    def __init__(
        self,
        shards: Sequence[Shard | str | Path] | str | Path,
        *,
        mask_overlap: bool = False,
        document_attention: bool = False,
    ) -> None:
        """`shards`: Shard objects, array/meta paths, a glob pattern, or a packed folder (its train split)."""
        if isinstance(shards, (str, Path)):
            self.shards = shards_from_spec(shards)
        else:
            self.shards = [s if isinstance(s, Shard) else load_shard(s) for s in shards]
        if not self.shards:
            raise UserError("no packed shards given")
        lengths = {s.seq_len for s in self.shards}
        if len(lengths) > 1:
            raise UserError(f"shards of different seq_len {sorted(lengths)}: {', '.join(str(s.path) for s in self.shards)}")
        self.seq_len = lengths.pop()
        self.offsets = np.cumsum([0] + [s.n_windows for s in self.shards])
        self.mask_overlap = mask_overlap
        self.document_attention = document_attention
        if document_attention:
            for shard in self.shards:
                if shard.docs_path is None or not shard.docs_path.is_file():
                    where = shard.docs_path or shard.meta_path.with_name(shard.meta_path.name.replace(".meta.json", ".docs.npz"))
                    raise UserError(
                        f"{where}: training.document_attention needs the boundaries sidecar; re-pack with a fastpack that writes it"
                    )
        # Which shards have their boundaries sidecar: the exact source of the padding mask.
        self._sidecar = [s.docs_path is not None and s.docs_path.is_file() for s in self.shards]
        self._arrays: Optional[list[Any]] = None  # opened on first read, per process
        self._docs: Optional[list[Optional[tuple[np.ndarray, np.ndarray]]]] = None

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getstate__(self) -> dict:
        # Workers re-open the maps themselves: a map pickled into every worker would be copied.
        state = self.__dict__.copy()
        state["_arrays"] = None
        state["_docs"] = None
        return state

    def _open(self) -> list[Any]:
        if self._arrays is None:
            self._arrays = [_open_array(s.path) for s in self.shards]
        return self._arrays

    def locate(self, index: int) -> tuple[int, int]:
        """(shard number, window inside it) of a dataset index."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"window {index} out of range for a dataset of {n} windows")
        index %= n
        k = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return k, index - int(self.offsets[k])

    def window(self, index: int) -> np.ndarray:
        """The raw window as stored (int32 or uint16)."""
        k, local = self.locate(index)
        row = self._open()[k][local]
        return row.numpy() if isinstance(row, torch.Tensor) else np.asarray(row)

    def segments(self, index: int) -> np.ndarray:
        """Lengths of the document segments of a window, from the sidecar (padding excluded)."""
        k, local = self.locate(index)
        if self._docs is None:
            self._docs = [None] * len(self.shards)
        if self._docs[k] is None:
            shard = self.shards[k]
            with np.load(shard.docs_path) as npz:
                offsets, lengths = npz["window_offsets"], npz["segment_lengths"]
            if len(offsets) != shard.n_windows + 1 or offsets[-1] != len(lengths):
                raise UserError(f"{shard.docs_path}: window_offsets do not match {shard.n_windows} windows")
            self._docs[k] = (offsets, lengths)
        offsets, lengths = self._docs[k]
        return lengths[offsets[local] : offsets[local + 1]]

    def _overlaps_previous(self, k: int, local: int) -> bool:
        """Whether this window repeats the tail of the previous window of its shard (stride < seq_len)."""
        shard = self.shards[k]
        overlap = shard.seq_len - shard.stride
        if local == 0 or overlap <= 0:
            return False
        kind = MODES[shard.mode].overlap
        if kind != "document":
            return kind == "stream"  # concat: window k = stream[k*stride : k*stride + seq_len]; bestfit: never
        # document mode: a document's first window starts fresh; compare the tokens.
        array = self._open()[k]
        prev, cur = array[local - 1], array[local]
        prev = prev.numpy() if isinstance(prev, torch.Tensor) else prev
        cur = cur.numpy() if isinstance(cur, torch.Tensor) else cur
        return bool(np.array_equal(prev[shard.stride :], cur[:overlap]))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        k, local = self.locate(index)
        shard = self.shards[k]
        row = self._open()[k][local]
        # Widen to int64 at the last moment (embedding and cross_entropy want long).
        ids = row.to(torch.int64) if isinstance(row, torch.Tensor) else torch.from_numpy(row.astype(np.int64))
        labels = ids.clone()
        item = {"input_ids": ids, "labels": labels}
        if self.document_attention or (self._sidecar[k] and shard.pad_id is not None):
            segs = self.segments(index)
            used = int(segs.sum())
            if used > self.seq_len or (segs <= 0).any():
                raise UserError(f"{shard.docs_path}: window {local} has segments {segs.tolist()} for seq_len {self.seq_len}")
            if self.document_attention:
                item["doc_ids"], item["position_ids"] = document_positions(segs, self.seq_len)
            # Padding is what the documents do not cover: exact even when pad_id is also a real token
            # (pad == eos, the runner's advice for a tokenizer without pad), whose real uses stay in the loss.
            labels[used:] = IGNORE_INDEX
        elif shard.pad_id is not None:
            labels[ids == shard.pad_id] = IGNORE_INDEX  # a pack without its boundaries sidecar
        if self.mask_overlap and self._overlaps_previous(k, local):
            labels[: shard.seq_len - shard.stride] = IGNORE_INDEX
        return item


def document_positions(segments: np.ndarray, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """doc_ids (padding is one more segment) and position_ids restarted at 0 for every segment."""
    used = int(segments.sum())
    runs = np.append(segments, seq_len - used)
    doc_ids = np.repeat(np.arange(len(segments) + 1), runs)
    starts = np.repeat(np.cumsum(np.append(0, segments)), runs)
    return torch.from_numpy(doc_ids.astype(np.int64)), torch.from_numpy(np.arange(seq_len, dtype=np.int64) - starts)


class ResumableBatchSampler:
    """Endless per-rank index batches over seeded permutations, starting at any sample position."""

    def __init__(self, n: int, batch_size: int, *, rank: int, world_size: int, seed: int, start: int = 0) -> None:
        if n <= 0:
            raise UserError("the train split has no windows (the corpus is shorter than one window?)")
        self.n, self.batch_size, self.rank, self.world_size = n, batch_size, rank, world_size
        self.seed, self.start = seed, start
        self._epoch, self._perm = -1, np.empty(0, dtype=np.int64)

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return self._perm

    def stream(self, start: int, count: int) -> np.ndarray:
        """Samples start .. start+count-1 of the endless stream."""
        out = np.empty(count, dtype=np.int64)
        done = 0
        while done < count:
            epoch, offset = divmod(start + done, self.n)
            take = min(count - done, self.n - offset)
            out[done : done + take] = self.permutation(epoch)[offset : offset + take]
            done += take
        return out

    def __iter__(self) -> Iterator[list[int]]:
        position = self.start
        while True:
            batch = self.stream(position, self.global_batch)
            yield batch[self.rank * self.batch_size : (self.rank + 1) * self.batch_size].tolist()
            position += self.global_batch


def eval_batches(n: int, batch_size: int, *, max_batches: Optional[int], rank: int, world_size: int) -> list[list[int]]:
    """This rank's share of a fixed evaluation set: evenly spaced windows (all when max_batches is None)."""
    total = n if max_batches is None else min(n, max_batches * batch_size * world_size)
    indices = (np.arange(total, dtype=np.int64) * n) // max(total, 1)
    batches = [indices[i : i + batch_size].tolist() for i in range(0, total, batch_size)]
    return batches[rank::world_size]
