"""Checkpoints: everything needed to resume exactly, loadable with `torch.load(weights_only=True)`.

Layout of `<output_dir>/checkpoints/`:

    step-00000500.pt   + step-00000500.json   # periodic; the newest `keep` are kept
    last.pt            + last.json            # the newest checkpoint (a hard link, so no extra space)
    best.pt            + best.json            # the one with the lowest val loss so far

A `.pt` is written to a temp file and renamed; its `.json` marker (step, size, format and the
sha256 of the bytes, computed while they were written) is written after it, so a checkpoint counts
only with its marker, a matching size and a matching checksum. One that fails is named, skipped,
and moved aside (`NAME.pt.unreadable`), never silently overwritten. A file is hashed once per
process while it stays the same (device, inode, size, mtime): the Kaggle runner picks a checkpoint
and the trainer checks it again, and the ranks of a torchrun launch get the launcher's hashes in
their launch file (a 1.5 GB checkpoint takes seconds to hash). Pruning removes the
marker first. The total size of the folder (hard links counted once, temps of saves in progress or of killed
runs included) is kept under a cap by dropping the oldest periodic checkpoints; `last` and `best`
are never dropped.

A checkpoint is a dict of tensors and plain types: format, version, step, tokens_seen,
data_position (samples of the training stream consumed), model, optimizer, scaler, scheduler,
rng (per rank), best_val_loss, train_seconds, model_args, config (resolved), world_size.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import torch

from fastpack.atomic import atomic_path, temp_bytes, write_json_atomic
from fastpack.errors import UserError

FORMAT = "fastpack-trainer-checkpoint"
VERSION = 1
CHECKPOINT_DIR = "checkpoints"
_STEP_RE = re.compile(r"^step-(\d+)$")
_SEARCH_DEPTH = 6  # /kaggle/input/notebooks/<owner>/<slug>/model_output/checkpoints is 5 deep
_RACY_S = 2.0  # a file modified this shortly before its hash is not remembered (see `checksum`)
_checksums: dict[tuple[int, int, int, int], str] = {}  # (st_dev, st_ino, st_size, st_mtime_ns) -> sha256


def step_name(step: int) -> str:
    return f"step-{step:08d}"


def _marker_path(pt: Path) -> Path:
    return pt.with_suffix(".json")


def _link_or_copy(src: Path, dst: Path) -> None:
    """Point `dst` at `src`'s bytes atomically: a hard link where the filesystem allows, else a copy."""
    with atomic_path(dst) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def save_checkpoint(
    state: dict[str, Any],
    ckpt_dir: str | Path,
    *,
    is_best: bool,
    keep: int,
    max_bytes: float,
    log: Callable[[str], None] = print,
) -> Path:
    """Write `state` as step-N.pt (+ marker), point last (and best) at it, prune. Returns the step file."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    step = int(state["step"])
    path = ckpt_dir / f"{step_name(step)}.pt"
    with atomic_path(path) as tmp:
        sha256 = _save_hashed(state, tmp)
    marker = {
        "format": FORMAT, "version": VERSION, "step": step, "size": path.stat().st_size, "sha256": sha256,
        "val_loss": state.get("val_loss"), "best_val_loss": state.get("best_val_loss"),
        "tokens_seen": state.get("tokens_seen"), "saved_at": time.time(), "model_args": state.get("model_args"),
    }
    write_json_atomic(_marker_path(path), {**marker, "file": path.name})
    names = ["last"] + (["best"] if is_best else [])
    for name in names:
        alias = ckpt_dir / f"{name}.pt"
        _marker_path(alias).unlink(missing_ok=True)  # invalid until both halves are new
        _link_or_copy(path, alias)
        write_json_atomic(_marker_path(alias), {**marker, "file": alias.name})
    prune_checkpoints(ckpt_dir, keep=keep, max_bytes=max_bytes, log=log)
    return path


class _HashingFile:
    """The file torch.save writes through: the sha256 of the bytes as they go, and the OS error it hides.

    torch turns a failed write (a full disk) into a RuntimeError about zip positions; the OSError
    kept here is re-raised instead, so the user reads "disk full".
    """

    def __init__(self, fh) -> None:
        self.fh, self.sha, self.error = fh, hashlib.sha256(), None

    def write(self, data) -> int:
        try:
            written = self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise
        self.sha.update(data)
        return written

    def flush(self) -> None:
        self.fh.flush()


def _save_hashed(state: dict[str, Any], tmp: Path) -> str:
    with open(tmp, "wb") as fh:
        out = _HashingFile(fh)
        try:
            torch.save(state, out)
        except RuntimeError:
            if out.error is not None:
                raise out.error from None
            raise
    return out.sha.hexdigest()


def _periodic(ckpt_dir: Path) -> list[tuple[int, Path]]:
    out = []
    for pt in ckpt_dir.glob("step-*.pt"):
        match = _STEP_RE.match(pt.stem)
        if match:
            out.append((int(match.group(1)), pt))
    return sorted(out)


def folder_bytes(ckpt_dir: Path) -> int:
    """Bytes of the checkpoint files, each inode counted once (last/best are hard links), and of our temps."""
    seen: dict[tuple[int, int], int] = {}
    for pt in ckpt_dir.glob("*.pt"):
        st = pt.stat()
        seen[(st.st_dev, st.st_ino)] = st.st_size
    return sum(seen.values()) + temp_bytes(ckpt_dir)


def _remove(pt: Path) -> None:
    _marker_path(pt).unlink(missing_ok=True)  # the marker first: a half-removed checkpoint is invalid
    pt.unlink(missing_ok=True)


def prune_checkpoints(ckpt_dir: Path, *, keep: int, max_bytes: float, log: Callable[[str], None] = print) -> None:
    periodic = _periodic(ckpt_dir)
    for _, pt in periodic[:-keep] if keep > 0 else periodic:
        _remove(pt)
    periodic = _periodic(ckpt_dir)
    while folder_bytes(ckpt_dir) > max_bytes and len(periodic) > 1:
        _remove(periodic.pop(0)[1])
    total = folder_bytes(ckpt_dir)
    if total > max_bytes:
        log(f"warning: checkpoints in {ckpt_dir} take {total / 1e9:.2f} GB, over training.max_checkpoint_gb "
            f"({max_bytes / 1e9:.2f} GB), with only last and best left")


def remove_after(ckpt_dir: Path, step: int, log: Callable[[str], None] = print) -> None:
    """Drop checkpoints newer than `step` (an abandoned continuation, when resuming from an older one).

    `best` stays: it is still the best model seen, whatever came after it.
    """
    newer = [pt for s, pt in _periodic(ckpt_dir) if s > step]
    marker = read_marker(ckpt_dir / "last.pt")
    if marker is not None and marker["step"] > step:
        newer.append(ckpt_dir / "last.pt")
    for pt in newer:
        log(f"removing {pt.name}: newer than the checkpoint resumed from (step {step})")
        _remove(pt)


def mark_best(step_file: Path, val_loss: float) -> None:
    """Point best at an already written checkpoint (a val loss measured after it was saved)."""
    marker = read_marker(step_file)
    if marker is None:
        return
    alias = step_file.with_name("best.pt")
    _marker_path(alias).unlink(missing_ok=True)
    _link_or_copy(step_file, alias)
    write_json_atomic(_marker_path(alias), {**marker, "file": alias.name, "val_loss": val_loss, "best_val_loss": val_loss})


def read_marker(pt: Path) -> Optional[dict]:
    try:
        marker = json.loads(_marker_path(pt).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("format") != FORMAT or not isinstance(marker.get("step"), int):
        return None
    return marker


def checkpoint_problem(pt: str | Path) -> Optional[str]:
    """Why `pt` is not a usable checkpoint (None: it is): marker, size, checksum, then a memory-mapped open."""
    pt = Path(pt)
    return _problem(pt, read_marker(pt))


def require_usable(pt: str | Path) -> None:
    """A checkpoint the user named: a UserError saying its problem. One without a marker (a bare .pt) is taken as it is."""
    marker = read_marker(Path(pt))
    problem = _problem(Path(pt), marker) if marker is not None else None
    if problem is not None:
        raise UserError(f"{pt}: not a usable checkpoint: {problem}")


def _problem(pt: Path, marker: Optional[dict]) -> Optional[str]:
    if marker is None:
        return "no valid marker beside it (an interrupted save)"
    if not pt.is_file():
        return "missing"
    size = pt.stat().st_size
    if size != marker.get("size"):
        return f"{size:,} bytes, its marker says {marker.get('size'):,} (truncated or replaced)"
    if marker.get("sha256") and checksum(pt) != marker["sha256"]:
        return "checksum mismatch: its bytes changed after it was saved"
    try:
        state = torch.load(pt, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        return f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})"
    if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("step") != marker["step"]:
        return "not the checkpoint its marker describes"
    return None


def is_valid_checkpoint(pt: str | Path) -> bool:
    """Marker present, size and checksum matching, and the file opens (memory-mapped) with the same step."""
    return checkpoint_problem(pt) is None


def file_sha256(path: Path, chunk: int = 16 << 20) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            sha.update(block)
    return sha.hexdigest()


def checksum(pt: Path) -> str:
    """`file_sha256`, remembered for this process while the file keeps its device, inode, size and mtime.

    Like git's "racy clean" rule, a file modified less than _RACY_S before the hash started is not
    remembered: a change within the same timestamp tick would leave its mtime as it was.
    """
    started, st = time.time(), pt.stat()
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _checksums:
        return _checksums[key]
    digest = file_sha256(pt)
    if st.st_mtime_ns < (started - _RACY_S) * 1e9:
        _checksums[key] = digest
    return digest


def known_checksums() -> tuple[tuple, ...]:
    """The hashes this process remembers, for a launch file: the ranks need not hash those files again."""
    return tuple((*key, digest) for key, digest in _checksums.items())


def remember_checksums(entries: Iterable[Sequence]) -> None:
    """Take over `known_checksums()` of the launching process (same machine, same files)."""
    for *key, digest in entries:
        _checksums[tuple(int(k) for k in key)] = str(digest)


def move_aside(pt: Path) -> Path:
    """Rename an unreadable checkpoint (and its marker) to `NAME.pt.unreadable[-k]`: kept for a look, never reused."""
    for k in range(1, 1000):
        suffix = ".unreadable" if k == 1 else f".unreadable-{k}"
        target = pt.with_name(pt.name + suffix)
        if not target.exists():
            break
    marker = _marker_path(pt)
    if marker.exists():
        os.replace(marker, marker.with_name(marker.name + suffix))
    os.replace(pt, target)
    return target


def _candidates(directory: Path, depth: int) -> Iterable[Path]:
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if entry.is_file() and entry.name.endswith(".pt"):
            stem = entry.name[:-3]
            if stem == "last" or _STEP_RE.match(stem):
                yield Path(entry.path)
        elif entry.is_dir(follow_symlinks=False) and depth > 0:
            yield from _candidates(Path(entry.path), depth - 1)


def find_latest_checkpoint(dirs: Iterable[str | Path]) -> Optional[Path]:
    """The valid checkpoint with the highest step under these folders (searched a few levels deep).

    On equal steps the earlier folder wins (pass the work dir first). Invalid or half-written
    files are skipped (`choose_checkpoint` says which and why).
    """
    return choose_checkpoint(dirs).path


@dataclass
class Choice:
    """The checkpoint to resume from (None: none valid) and those skipped on the way, with why."""

    path: Optional[Path] = None
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def choose_checkpoint(dirs: Iterable[str | Path], *, move_bad_in: Optional[Path] = None) -> Choice:
    """Newest first, the first checkpoint that passes `checkpoint_problem`; failed ones in `move_bad_in` are moved aside."""
    ranked = []
    for order, directory in enumerate(dirs):
        directory = Path(directory)
        if not directory.is_dir():
            continue
        for pt in _candidates(directory, _SEARCH_DEPTH):
            marker = read_marker(pt)
            if marker is not None:
                ranked.append((-marker["step"], order, pt.stem == "last", str(pt), pt, marker))  # prefer the step-N name
    choice = Choice()
    for *_, pt, marker in sorted(ranked, key=lambda entry: entry[:4]):
        if not pt.exists():  # already moved aside
            continue
        problem = _problem(pt, marker)
        if problem is None:
            choice.path = pt
            return choice
        if move_bad_in is not None and pt.resolve().parent == Path(move_bad_in).resolve():
            problem += f"; moved aside to {move_aside(pt).name}"
        choice.skipped.append((pt, problem))
    return choice


def load_checkpoint(path: str | Path, *, mmap: bool = False) -> dict[str, Any]:
    """The checkpoint dict; a UserError for anything that is not one of ours.

    `mmap=True` maps the file instead of reading it: only the tensors used are paged in (the
    model alone, for sampling).
    """
    path = Path(path)
    if path.is_dir():
        found = find_latest_checkpoint([path])
        if found is None:
            raise UserError(f"{path}: no valid checkpoint in this folder")
        path = found
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise UserError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # a truncated zip, a pickle with objects weights_only refuses, ...
        raise UserError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not a fastpack trainer checkpoint")
    if state.get("version") != VERSION:
        raise UserError(f"{path}: checkpoint version {state.get('version')}, this trainer reads version {VERSION}")
    state["path"] = str(path)
    return state


def check_shape(state: dict[str, Any], expected: dict[str, int], path: str | Path) -> None:
    """A checkpoint from another model shape fails with the differing fields named, and the two ways out."""
    saved = state.get("model_args") or {}
    diffs = [f"{k} {saved.get(k)} (checkpoint) vs {v} (config)" for k, v in expected.items() if saved.get(k) != v]
    if diffs:
        preset = ((state.get("config") or {}).get("model") or {}).get("preset")
        same = f"--preset {preset}" if preset else "the checkpoint's model settings"
        raise UserError(f"{path}: checkpoint of a different model shape: {'; '.join(diffs)}; to continue it, run "
                        f"with {same}; to start a new model instead, pass --resume none")
