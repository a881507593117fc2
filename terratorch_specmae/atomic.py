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

``exclusive=True`` makes the final step a creation, not a replacement: it fails with
:class:`OutputExistsError` if something appeared under the name meanwhile (another run writing
the same output), and nothing is replaced. A file is created exclusively with a hard link
(``os.link`` fails on an existing name), or, where the file system has no hard links, by
claiming the name with ``O_CREAT | O_EXCL`` before the rename.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class OutputExistsError(FileExistsError):
    """An exclusive output whose name another writer took first; nothing of it was replaced."""


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

    def commit(self, exclusive: bool = False) -> Path:
        """Move the temporary onto ``path``; ``exclusive``: only if ``path`` does not exist (else
        :class:`OutputExistsError`, and the temporary is removed)."""
        if not self.tmp.exists():
            raise FileNotFoundError(f"Nothing was written to the temporary {str(self.tmp)!r} of {str(self.path)!r}.")
        _fsync(self.tmp)
        if exclusive:
            try:
                _create_exclusively(self.tmp, self.path)
            except FileExistsError:
                self.discard()
                raise OutputExistsError(
                    f"{str(self.path)!r} appeared while this output was being written (another run writing the same "
                    "path?); it was left as it is and this output was not written. Choose another path."
                ) from None
        else:
            os.replace(self.tmp, self.path)
        _fsync(self.path.parent)
        return self.path

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


def _create_exclusively(tmp: Path, path: Path) -> None:
    """``tmp`` becomes ``path`` only if ``path`` does not exist (FileExistsError otherwise)."""
    try:
        os.link(tmp, path)  # atomic, and fails on an existing name
    except FileExistsError:
        raise
    except OSError:  # no hard links here (some network or FAT file systems): claim the name, then fill it
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        os.replace(tmp, path)
        return
    tmp.unlink()


@contextmanager
def atomic_path(path: str | Path, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; write the file there. On leaving the block it replaces
    ``path`` (``exclusive``: creates it, failing if it exists); on an exception it is removed and
    ``path`` keeps whatever it held before."""
    pending = PendingFile(path)
    try:
        yield pending.tmp
        pending.commit(exclusive)
    except BaseException:
        pending.discard()
        raise


def atomic_write_bytes(path: str | Path, data: bytes, exclusive: bool = False) -> Path:
    with atomic_path(path, exclusive) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8", exclusive: bool = False) -> Path:
    with atomic_path(path, exclusive) as tmp, open(tmp, "w", encoding=encoding, newline="") as f:  # newline="": as given
        f.write(text)
    return Path(path)


@contextmanager
def atomic_folder(path: str | Path, exclusive: bool = False) -> Iterator[Path]:
    """Yield the folder to write ``path``'s files into.

    If ``path`` does not exist yet, that is a temporary sibling folder, renamed to ``path`` when
    the block ends (removed on an exception), so a new folder never appears half-written; if a
    folder with files appeared under the name meanwhile, that is an :class:`OutputExistsError` and
    it is left as it is. If ``path`` exists it is yielded itself: write each file with
    :func:`atomic_path` (``exclusive=True`` when nothing may be replaced), and files of the folder
    that the block does not write are left alone; ``exclusive`` refuses a folder with files in it.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise NotADirectoryError(f"{str(path)!r} is a file; expected a folder (or a path that does not exist yet).")
        if exclusive and any(path.iterdir()):
            raise OutputExistsError(f"The folder {str(path)!r} is not empty; expected a new or empty folder.")
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
        # a rename, not os.replace: if someone created ``path`` meanwhile and filled it, this fails rather than merge
        try:
            os.rename(tmp, path)
        except OSError as err:
            if not path.exists():
                raise
            raise OutputExistsError(
                f"The folder {str(path)!r} appeared while this output was being written (another run writing the "
                "same folder?); it was left as it is and this output was not written. Choose another folder."
            ) from err
        _fsync(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # only ever the temporary folder this call created
        raise


__all__ = [
    "OutputExistsError",
    "PendingFile",
    "atomic_folder",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "temporary_sibling",
]
