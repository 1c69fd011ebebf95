"""Blob storage in a local folder: atomic writes (temp file, fsync, rename)."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from imagify.domain.errors import NotFound, Unavailable
from imagify.domain.ports import StoredBlob

# Keys are made by the application (never from user input); still, refuse anything odd.
_KEY = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*")


class LocalFolderBlobStorage:
    def __init__(self, root: Path | str) -> None:
        self._root = Path(root)

    def put(self, key: str, data: BinaryIO | bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
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
        size = os.fstat(stream.fileno()).st_size
        try:
            content_type = json.loads(_meta_path(path).read_text())["content_type"]
        except (OSError, ValueError, KeyError):
            content_type = "application/octet-stream"
        return StoredBlob(stream, size, content_type)  # type: ignore[arg-type]

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        _meta_path(path).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

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


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta")
