"""Writers: rows streamed to `.npy` as they are cut; `.pt` made from it without a second copy in RAM.

The `.npy` header is written first with room for any shape and rewritten with the final row
count at the end, so rows go straight from the windowers' buffers to the file.
"""
from __future__ import annotations

import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_MAGIC = b"\x93NUMPY\x01\x00"
_HEADER_BYTES = 128  # magic + length + dict, padded: a multiple of 64 as numpy requires
_COPY_CHUNK = 16 << 20


def _npy_header(shape: tuple[int, ...], dtype) -> bytes:
    text = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (np.dtype(dtype).str, tuple(shape))
    body = text.ljust(_HEADER_BYTES - len(_MAGIC) - 2 - 1) + "\n"
    return _MAGIC + struct.pack("<H", len(body)) + body.encode("latin1")


class _RowSink:
    """Rows are cut into `reserve(n)` and handed over by `commit(n)`; flat runs of tokens go to `write`."""

    def __init__(self, seq_len: int | None, dtype, chunk_bytes: int = 4 << 20) -> None:
        self.seq_len, self.dtype = seq_len, np.dtype(dtype)
        self.row_bytes = (seq_len or 1) * self.dtype.itemsize
        self.rows_per_chunk = max(1, chunk_bytes // self.row_bytes)
        self._rows: np.ndarray | None = None

    def reserve(self, n_rows: int) -> np.ndarray:
        if self._rows is None:
            self._rows = np.empty((self.rows_per_chunk, self.seq_len or 1), self.dtype)
        return self._rows[:n_rows]

    def commit(self, n_rows: int) -> None:
        self.write(self._rows[:n_rows])

    def write(self, tokens: np.ndarray) -> None:
        raise NotImplementedError


class NpyWriter(_RowSink):
    """Append tokens to an .npy of rows of `seq_len` (1-D when None); `close()` fixes the header, returns the rows.

    Or, for a windower that places rows in any order (best-fit), `mapped(n)` preallocates n rows
    and maps them for writing.
    """

    def __init__(self, path: str | os.PathLike, seq_len: int | None, dtype) -> None:
        super().__init__(seq_len, dtype)
        self.path = Path(path)
        self.tokens = 0
        self._file = open(self.path, "w+b")  # readable too: mapped() needs it
        self._file.write(_npy_header(self._shape(0), self.dtype))
        self._mm = None

    def mapped(self, n_rows: int) -> np.ndarray:
        """n_rows zero rows, mapped from the file: write them in any order; `close()` unmaps."""
        import mmap

        self.tokens = n_rows * (self.seq_len or 1)
        self._file.truncate(_HEADER_BYTES + self.tokens * self.dtype.itemsize)
        if n_rows == 0:
            return np.empty((0, self.seq_len or 1), self.dtype)
        self._file.flush()
        self._mm = mmap.mmap(self._file.fileno(), 0)
        return np.frombuffer(self._mm, self.dtype, count=self.tokens, offset=_HEADER_BYTES).reshape(n_rows, -1)

    def release_pages(self) -> None:
        """Hand the mapped rows written so far back to the page cache (RSS stays flat)."""
        import mmap

        self._mm.madvise(mmap.MADV_DONTNEED)

    def _shape(self, rows: int) -> tuple[int, ...]:
        return (rows,) if self.seq_len is None else (rows, self.seq_len)

    def write(self, tokens: np.ndarray) -> None:
        assert tokens.dtype == self.dtype and tokens.flags.c_contiguous
        self.write_bytes(memoryview(tokens).cast("B"))

    def write_bytes(self, data: memoryview) -> None:
        self._file.write(data)
        self.tokens += len(data) // self.dtype.itemsize

    def truncate(self, n_tokens: int) -> None:
        self._file.truncate(_HEADER_BYTES + n_tokens * self.dtype.itemsize)
        self._file.seek(0, os.SEEK_END)
        self.tokens = n_tokens

    def close(self) -> int:
        rows, rest = divmod(self.tokens, self.seq_len or 1)
        assert rest == 0, "the windower leaves whole rows"
        self._unmap()
        if not self._file.closed:
            self._file.seek(0)
            self._file.write(_npy_header(self._shape(rows), self.dtype))
            self._file.close()
        return rows

    def abort(self) -> None:
        self._unmap()
        try:
            self._file.close()
        except OSError:  # flushing a file being thrown away (a full disk): the temp is deleted next
            pass

    def _unmap(self) -> None:
        """A view can outlive `del` in a reference cycle (seen after numba's first compile); collect it,
        and if one is still alive leave the unmapping to it: the data is in the page cache."""
        if self._mm is None:
            return
        mm, self._mm = self._mm, None
        try:
            mm.close()
        except BufferError:
            import gc

            gc.collect()
            try:
                mm.close()
            except BufferError:
                pass


class BackgroundWriter(_RowSink):
    """Rows cut into its chunk buffers are written by a thread while the parser goes on.

    On these VMs writing into fresh page cache costs about as much as parsing and runs on one
    core, so overlapping them pays when windows overlap and the output outgrows the input.
    Flat runs (`write`, the stream itself when stride == seq_len) are written at once, in order,
    from the caller's buffer: copying them to hand them over costs more than it saves.
    """

    def __init__(self, sink: NpyWriter, chunk_bytes: int = 4 << 20, depth: int = 3) -> None:
        import queue
        import threading

        super().__init__(sink.seq_len, sink.dtype, chunk_bytes)
        self.sink = sink
        self._chunk_bytes = self.rows_per_chunk * self.row_bytes
        self._free: queue.Queue = queue.Queue()
        for _ in range(depth):
            self._free.put(np.empty(self._chunk_bytes, np.uint8))
        self._full: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._current, self._filled = self._free.get(), 0
        self._thread = threading.Thread(target=self._run, name="fastpack-writer", daemon=True)
        self._thread.start()

    def reserve(self, n_rows: int) -> np.ndarray:
        if self._filled + n_rows * self.row_bytes > self._chunk_bytes:
            self._hand_over()
        view = self._current[self._filled:self._filled + n_rows * self.row_bytes]
        return view.view(self.dtype).reshape(n_rows, self.seq_len)

    def commit(self, n_rows: int) -> None:
        self._filled += n_rows * self.row_bytes
        if self._filled == self._chunk_bytes:
            self._hand_over()

    def write(self, tokens: np.ndarray) -> None:
        self._wait()
        self.sink.write(tokens)

    def mapped(self, n_rows: int) -> np.ndarray:
        self._wait()
        return self.sink.mapped(n_rows)

    def release_pages(self) -> None:
        self.sink.release_pages()

    def truncate(self, n_tokens: int) -> None:
        self._wait()
        self.sink.truncate(n_tokens)

    def close(self) -> int:
        self._wait()
        self._full.put(None)
        self._thread.join()
        return self.sink.close()

    def abort(self) -> None:
        if self._thread.is_alive():
            self._full.put(None)
            self._thread.join()
        self.sink.abort()

    def _hand_over(self) -> None:
        if self._filled:
            self._check()
            self._full.put((self._current, self._filled))
            self._current, self._filled = self._free.get(), 0

    def _wait(self) -> None:
        """Everything handed over so far is written."""
        self._hand_over()
        self._full.join()
        self._check()

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            item = self._full.get()
            if item is None:
                self._full.task_done()
                return
            buf, n = item
            try:
                if self._error is None:
                    self.sink.write_bytes(memoryview(buf)[:n])
            except BaseException as exc:  # re-raised in the producer's thread
                self._error = exc
            self._free.put(buf)
            self._full.task_done()


class ArraySink(_RowSink):
    """Collects rows in memory (for `pack_arrays`)."""

    def __init__(self, seq_len: int, dtype) -> None:
        super().__init__(seq_len, dtype)
        self.pieces: list[np.ndarray] = []

    def write(self, tokens: np.ndarray) -> None:
        self.pieces.append(tokens.reshape(-1).copy())

    def mapped(self, n_rows: int) -> np.ndarray:
        rows = np.zeros((n_rows, self.seq_len), self.dtype)
        self.pieces = [rows.reshape(-1)]
        return rows

    def release_pages(self) -> None:
        pass

    def truncate(self, n_tokens: int) -> None:
        self.pieces = [self.array_flat()[:n_tokens]]

    def array_flat(self) -> np.ndarray:
        return np.concatenate(self.pieces) if self.pieces else np.empty(0, self.dtype)

    def rows(self) -> np.ndarray:
        return self.array_flat().reshape(-1, self.seq_len)


def npy_to_pt(npy_path: str | os.PathLike, pt_path: str | os.PathLike) -> None:
    """Write the .npy's array as a torch tensor file that `torch.load(path, mmap=True)` maps.

    With `torch.serialization.skip_data` (torch >= 2.5) the file is laid out without data and
    the bytes are then copied in from the .npy in chunks: memory stays flat. Older torch saves
    a tensor over the memory-mapped .npy, which holds the data once, as page cache.
    """
    import torch

    array = np.load(npy_path, mmap_mode="r")
    dtype = {np.dtype(np.int32): torch.int32, np.dtype(np.uint16): torch.uint16}[array.dtype]
    if not hasattr(torch.serialization, "skip_data"):
        torch.save(torch.from_numpy(np.asarray(array).copy() if array.size == 0 else array), pt_path)
        return
    placeholder = torch.empty(array.shape, dtype=dtype)  # untouched pages: no RSS
    with torch.serialization.skip_data():
        torch.save(placeholder, pt_path)
    del placeholder
    record = _storage_record(pt_path, array.nbytes)
    crc = 0
    with open(npy_path, "rb") as src, open(pt_path, "r+b") as dst:
        src.seek(array.offset)
        dst.seek(record.data_offset)
        left = array.nbytes
        buf = bytearray(min(_COPY_CHUNK, max(left, 1)))
        view = memoryview(buf)
        while left > 0:
            got = src.readinto(view[: min(left, len(buf))])
            if not got:
                raise OSError(f"{npy_path}: shorter than its header says")
            dst.write(view[:got])
            crc = zlib.crc32(view[:got], crc)
            left -= got
        for at in record.crc_offsets:  # keep the zip valid for tools that check it
            dst.seek(at)
            dst.write(struct.pack("<I", crc))


@dataclass
class _Record:
    data_offset: int
    crc_offsets: tuple[int, int]  # in the local header and in the central directory


def _storage_record(pt_path: str | os.PathLike, nbytes: int) -> _Record:
    """Where the single storage record (`*/data/0`) of a torch zip file keeps its bytes and CRC."""
    with zipfile.ZipFile(pt_path) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("/data/0"))
        if info.file_size != nbytes:
            raise RuntimeError(f"{pt_path}: storage record has {info.file_size} bytes, expected {nbytes}")
        central = zf.start_dir
    with open(pt_path, "rb") as f:
        f.seek(info.header_offset)
        name_len, extra_len = struct.unpack("<HH", f.read(30)[26:30])
        f.seek(central)
        while True:  # walk the central directory to this record's entry
            entry = f.read(46)
            if entry[:4] != b"PK\x01\x02":
                raise RuntimeError(f"{pt_path}: central directory entry for {info.filename} not found")
            n, m, k = struct.unpack("<HHH", entry[28:34])
            name = f.read(n)
            if name.decode() == info.filename:
                crc_in_central = f.tell() - n - 46 + 16
                break
            f.seek(m + k, os.SEEK_CUR)
    data_offset = info.header_offset + 30 + name_len + extra_len
    return _Record(data_offset, (info.header_offset + 14, crc_in_central))
