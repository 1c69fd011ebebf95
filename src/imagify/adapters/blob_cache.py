"""Small blobs kept in memory, in front of any BlobStorage.

Sound without invalidation because a key is never rewritten: originals are keyed by a
random image id and each thumbnail render writes a key of its own. Whether the bytes may
be served is decided before, by the use case (and its stamped read cache); a deleted
image's bytes can linger here only until they age out of the LRU, unreachable.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

from imagify.domain.ports import BlobStorage, Leftover, StoredBlob


class CachedBlobStorage:
    def __init__(self, inner: BlobStorage, max_bytes: int, max_item: int = 1024 * 1024) -> None:
        self._inner = inner
        self._max_bytes = max_bytes
        self._max_item = min(max_item, max_bytes)
        self._items: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def cached(self, key: str) -> StoredBlob | None:
        """The blob from memory, or None when reading it needs the storage."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
        data, content_type = item
        return StoredBlob(io.BytesIO(data), len(data), content_type)

    def open(self, key: str) -> StoredBlob:
        hit = self.cached(key)
        if hit is not None:
            return hit
        blob = self._inner.open(key)
        if blob.size > self._max_item:
            return blob
        data = blob.read_all()
        self._keep(key, data, blob.content_type)
        return StoredBlob(io.BytesIO(data), len(data), blob.content_type)

    def put(self, key: str, data: BinaryIO | bytes, content_type: str) -> None:
        self._inner.put(key, data, content_type)

    def delete(self, key: str) -> None:
        with self._lock:
            item = self._items.pop(key, None)
            if item is not None:
                self._bytes -= len(item[0])
        self._inner.delete(key)

    def exists(self, key: str) -> bool:
        return self._inner.exists(key)

    def keys(self, prefix: str = "", modified_before: datetime | None = None) -> Iterator[str]:
        return self._inner.keys(prefix, modified_before)

    def leftovers(self, started_before: datetime | None = None) -> Iterator[Leftover]:
        return self._inner.leftovers(started_before)

    def remove_leftover(self, leftover: Leftover) -> None:
        self._inner.remove_leftover(leftover)

    def check(self) -> None:
        self._inner.check()

    def _keep(self, key: str, data: bytes, content_type: str) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old[0])
            self._items[key] = (data, content_type)
            self._bytes += len(data)
            while self._bytes > self._max_bytes:
                _, (evicted, _) = self._items.popitem(last=False)
                self._bytes -= len(evicted)
