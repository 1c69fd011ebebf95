"""Blob storage in a local folder: atomic writes (temp file, fsync, rename)."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from imagify.domain.errors import NotFound, Unavailable
from imagify.domain.ports import Leftover, StoredBlob

# Keys are made by the application (never from user input); still, refuse anything odd.
_KEY = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*")
TEMPORARY = ".tmp-"  # put() writes here first, then renames
TEMPORARY_FILE = "temporary file"


class LocalFolderBlobStorage:
    def __init__(self, root: Path | str) -> None:
        self._root = Path(root)

    def put(self, key: str, data: BinaryIO | bytes, content_type: str) -> None:
        path = self._path(key)
        fd, tmp = _temporary_file_in(path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(data, bytes):
                    out.write(data)
                else:
                    data.seek(0)
                    shutil.copyfileobj(data, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
            _meta_path(path).write_text(json.dumps({"content_type": content_type}))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def open(self, key: str) -> StoredBlob:
        path = self._path(key)
        try:
            stream = path.open("rb")
        except FileNotFoundError:
            raise NotFound(f"the stored file for {key!r} is missing") from None
        return LocalBlob(stream, os.fstat(stream.fileno()).st_size, path)  # type: ignore[arg-type]

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        _meta_path(path).unlink(missing_ok=True)
        if key.count("/") > 1:  # thumbnails/<image id>/<name>: the image's own folder goes
            try:  # with its last file, or deleted images would leave a folder each
                path.parent.rmdir()
            except OSError:  # its other files are still there (or it is gone already)
                pass

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def keys(self, prefix: str = "", modified_before: datetime | None = None) -> Iterator[str]:
        """Keys under `prefix`; temporary and `.meta` files are not keys."""
        cutoff = modified_before.timestamp() if modified_before is not None else None
        for folder, _, files in os.walk(self._root):
            for name in files:
                key = (Path(folder) / name).relative_to(self._root).as_posix()
                if not key.startswith(prefix) or not _KEY.fullmatch(key):
                    continue
                try:
                    mtime = (Path(folder) / name).stat().st_mtime
                except FileNotFoundError:  # deleted since the folder was listed
                    continue
                if cutoff is None or mtime < cutoff:
                    yield key

    def cached(self, key: str) -> StoredBlob | None:
        return None  # nothing kept in memory: see CachedBlobStorage

    def leftovers(self, started_before: datetime | None = None) -> Iterator[Leftover]:
        """`.tmp-*` files of a put() killed before its rename."""
        cutoff = started_before.timestamp() if started_before is not None else None
        for folder, _, files in os.walk(self._root):
            for name in files:
                if not name.startswith(TEMPORARY):
                    continue
                path = Path(folder) / name
                try:
                    mtime = path.stat().st_mtime
                except FileNotFoundError:  # renamed or removed since the folder was listed
                    continue
                if cutoff is None or mtime < cutoff:
                    yield Leftover(TEMPORARY_FILE, path.relative_to(self._root).as_posix())

    def remove_leftover(self, leftover: Leftover) -> None:
        path = (self._root / leftover.key).resolve()
        if not path.name.startswith(TEMPORARY) or not path.is_relative_to(self._root.resolve()):
            raise ValueError(f"not a temporary file of this storage: {leftover.key!r}")
        path.unlink(missing_ok=True)

    def check(self) -> None:
        try:
            self._root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._root, prefix=".check-")
            os.close(fd)
            os.unlink(tmp)
        except OSError as error:
            raise Unavailable(f"the blob folder {str(self._root)!r} is not writable: {error}") from None

    def path_of(self, key: str) -> Path:
        """The file behind a key, for serving it without copying through Python."""
        return self._path(key)

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"invalid blob key {key!r}")
        return self._root / key


class LocalBlob(StoredBlob):
    """An open file whose content type is read from its side file only when asked for.

    Serving a blob needs only its bytes and size (the type is in the database), so the
    hot path skips opening and parsing the `.meta` file. `path` names the file itself.
    """

    def __init__(self, stream: BinaryIO, size: int, path: Path) -> None:
        self.stream = stream
        self.size = size
        self.path = path
        self._content_type: str | None = None

    @property  # type: ignore[override]
    def content_type(self) -> str:
        if self._content_type is None:
            try:
                self._content_type = json.loads(_meta_path(self.path).read_text())["content_type"]
            except (OSError, ValueError, KeyError):
                self._content_type = "application/octet-stream"
        return self._content_type

    @content_type.setter
    def content_type(self, value: str) -> None:
        self._content_type = value


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta")


def _temporary_file_in(folder: Path) -> tuple[int, str]:
    """A new temporary file in `folder`, made with the folder if need be. A delete may
    remove the folder, emptied, between the two (see delete): then it is made again."""
    for _ in range(2):
        folder.mkdir(parents=True, exist_ok=True)
        try:
            return tempfile.mkstemp(dir=folder, prefix=TEMPORARY)
        except FileNotFoundError:
            continue
    folder.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(dir=folder, prefix=TEMPORARY)
