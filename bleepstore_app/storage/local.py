"""Blobs as files on the local disk, crash-only.

Layout under ``root_dir``::

    tmp/<uuid>            a write in progress, flock-ed by its writer
    data/ab/cd/<uuid>     a finished blob (location = the uuid)

A write goes to ``tmp/``, is fsynced, renamed into ``data/`` and the directory is
fsynced; only then does the caller commit metadata. A writer holds an exclusive
``flock`` on its temp file for its whole life, so recovery can tell a dead
writer's leftover (lock free) from a live write of another process sharing the
directory (lock held), with no clock or grace period involved.
"""
from __future__ import annotations

import errno
import fcntl
import os
import time
import uuid
from pathlib import Path
from typing import Iterator

from ..cooperative import offload
from .base import BlobNotFound, BlobReader, Readable, StorageBackend, StorageError, StoredBlob

CHUNK = 1024 * 1024


class LocalBlobReader(BlobReader):
    def __init__(self, fd: int, size: int) -> None:
        self._fd: int | None = fd
        self.size = size

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        try:
            pos = start
            while pos < end:
                chunk = os.pread(self._fd, min(CHUNK, end - pos), pos)
                if not chunk:
                    raise StorageError("blob shorter than its recorded size")
                pos += len(chunk)
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class LocalStorage(StorageBackend):
    name = "local"

    def __init__(self, root_dir: str, fsync: bool = True) -> None:
        self.root = Path(root_dir).absolute()
        self.tmp = self.root / "tmp"
        self.data = self.root / "data"
        self.fsync = fsync
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)

    def _path(self, location: str) -> Path:
        if len(location) != 32 or not location.isalnum():
            raise BlobNotFound(location)
        return self.data / location[:2] / location[2:4] / location

    # -- writing -----------------------------------------------------------

    def _new_temp(self) -> tuple[str, Path, int]:
        location = uuid.uuid4().hex
        tmp = self.tmp / location
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)  # marks the write as alive (see module doc)
        return location, tmp, fd

    def _finish(self, location: str, tmp: Path, fd: int) -> None:
        """fsync, rename into data/, fsync the directory: the blob is now durable."""
        if self.fsync:
            offload(os.fsync, fd)
        final = self._path(location)
        try:
            os.rename(tmp, final)
        except FileNotFoundError:
            final.parent.mkdir(parents=True, exist_ok=True)
            if self.fsync:
                _fsync_dir(final.parent.parent)
            os.rename(tmp, final)
        if self.fsync:
            offload(_fsync_dir, final.parent)

    def _write_new(self, fill) -> StoredBlob:
        location, tmp, fd = self._new_temp()
        try:
            size = fill(fd)
            self._finish(location, tmp, fd)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        finally:
            os.close(fd)
        return StoredBlob(location, size)

    def put(self, source: Readable) -> StoredBlob:
        def fill(fd: int) -> int:
            size = 0
            while True:
                chunk = source.read(CHUNK)
                if not chunk:
                    return size
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
                size += len(chunk)
        return self._write_new(fill)

    def copy(self, location: str) -> StoredBlob:
        return self._concatenate([location])

    def _concatenate(self, locations: list[str]) -> StoredBlob:
        def fill(fd: int) -> int:
            size = 0
            for loc in locations:
                size += _append_file(fd, self._path(loc))
            return size
        return self._write_new(fill)

    # -- reading and deleting ----------------------------------------------

    def open(self, location: str) -> LocalBlobReader:
        try:
            fd = os.open(self._path(location), os.O_RDONLY)
        except FileNotFoundError:
            raise BlobNotFound(location) from None
        return LocalBlobReader(fd, os.fstat(fd).st_size)

    def delete(self, location: str) -> None:
        try:
            os.unlink(self._path(location))
        except FileNotFoundError:
            pass
        except BlobNotFound:
            pass

    # -- recovery ----------------------------------------------------------

    def recover(self) -> None:
        """Remove temp files whose writer is gone (their flock is free)."""
        for entry in os.scandir(self.tmp):
            try:
                fd = os.open(entry.path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    continue  # a live writer in another process
                raise
            else:
                _unlink_quietly(Path(entry.path))
            finally:
                os.close(fd)

    def iter_locations(self, older_than_seconds: float) -> Iterator[str]:
        cutoff = time.time() - older_than_seconds
        for top in os.scandir(self.data):
            if not top.is_dir():
                continue
            for mid in os.scandir(top.path):
                if not mid.is_dir():
                    continue
                for entry in os.scandir(mid.path):
                    try:
                        if entry.stat().st_mtime < cutoff:
                            yield entry.name
                    except FileNotFoundError:
                        continue

    def check(self) -> None:
        if not (os.access(self.tmp, os.W_OK) and os.access(self.data, os.W_OK)):
            raise StorageError(f"{self.root} is not writable")


def _append_file(fd: int, path: Path) -> int:
    """Append a whole file to fd inside the kernel (copy_file_range)."""
    try:
        src = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise BlobNotFound(path.name) from None
    try:
        remaining = os.fstat(src).st_size
        total = remaining
        while remaining:
            n = os.copy_file_range(src, fd, min(remaining, 1 << 30))
            if n == 0:
                raise StorageError(f"short copy from {path.name}")
            remaining -= n
        return total
    finally:
        os.close(src)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
