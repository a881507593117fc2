"""Atomic writes: a file (or a new folder) appears complete at its final path, or not at all.

Everything is written under a temporary name in the same folder (``.<name>.<pid>.<random>.tmp``,
hidden, on the same file system) and renamed onto the final path with :func:`os.replace` once
complete. An exception removes the temporary; a killed process (SIGKILL, power loss) leaves at
most a stray ``.tmp`` file beside an untouched earlier output.

* :func:`atomic_path` — a context manager yielding the temporary path to write to (any writer:
  ``safetensors``, ``rasterio``, ``matplotlib``).
* :func:`atomic_write_text` / :func:`atomic_write_bytes` — the same for a string or bytes.
* :class:`PendingFile` — the same, for writes that span several calls (a GeoTIFF filled batch by
  batch): ``commit()`` at the end, ``discard()`` on failure.
* :func:`atomic_folder` — a folder written anew appears only once all its files are in it.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_sibling(path: str | Path) -> Path:
    """A fresh hidden name beside ``path``: ``<folder>/.<name>.<pid>.<random>.tmp``."""
    path = Path(path)
    # pid + random: two processes (or two writers in one) never share a temporary
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _fsync(path: Path) -> None:
    """Flush a file (or, on POSIX, a folder's entries) to disk, so a rename never lands before the data."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass  # durability is best effort (Windows opens no folders, some file systems refuse fsync); the rename stays atomic


class PendingFile:
    """A file being written under a temporary name: :meth:`commit` moves it onto ``path``,
    :meth:`discard` removes it. ``tmp`` is the path to write to; the folder is created."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(f"Cannot write the file {str(self.path)!r}: a folder of that name exists.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temporary_sibling(self.path)

    def commit(self) -> Path:
        if not self.tmp.exists():
            raise FileNotFoundError(f"Nothing was written to the temporary {str(self.tmp)!r} of {str(self.path)!r}.")
        _fsync(self.tmp)
        os.replace(self.tmp, self.path)
        _fsync(self.path.parent)
        return self.path

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; write the file there. On leaving the block it replaces
    ``path``; on an exception it is removed and ``path`` keeps whatever it held before."""
    pending = PendingFile(path)
    try:
        yield pending.tmp
        pending.commit()
    except BaseException:
        pending.discard()
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", encoding=encoding, newline="") as f:  # newline="": text as given
        f.write(text)
    return Path(path)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield the folder to write ``path``'s files into.

    If ``path`` does not exist yet, that is a temporary sibling folder, renamed to ``path`` when
    the block ends (removed on an exception), so a new folder never appears half-written. If
    ``path`` exists it is yielded itself: write each file with :func:`atomic_path`, and files of
    the folder that the block does not write are left alone.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise NotADirectoryError(f"{str(path)!r} is a file; expected a folder (or a path that does not exist yet).")
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
        # a rename, not os.replace: if someone created ``path`` meanwhile and filled it, this fails rather than merge
        os.rename(tmp, path)
        _fsync(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # only ever the temporary folder this call created
        raise


__all__ = [
    "PendingFile",
    "atomic_folder",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "temporary_sibling",
]
