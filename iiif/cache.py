"""A bounded disk cache of rendered derivatives, least recently used evicted first.

Keys include the image's version, so a re-ingested image can never be served
from an entry of its old pixels. Entries are written to a temporary file and
renamed into place, so concurrent processes never read half an entry. A hit
touches the file's mtime, which is the recency eviction sorts by. Each process
counts what it writes and evicts (scanning the directory) when its share could
have taken the cache over its bound; the cache is disposable, so a crash at any
point loses at most some entries.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from pathlib import Path

_LOW_WATER = 0.9  # evict down to this fraction of the bound


class DiskCache:
    def __init__(self, root: str | os.PathLike, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._size: int | None = None  # bytes on disk as this process last knew it

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @staticmethod
    def key(*parts: str) -> str:
        return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> bytes | None:
        if not self.enabled:
            return None
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            return None
        try:
            os.utime(path)
        except OSError:
            pass  # evicted meanwhile: the bytes we read are still right
        return data

    def put(self, key: str, data: bytes) -> None:
        if not self.enabled or len(data) > self.max_bytes // 10:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{key}.{uuid.uuid4().hex}")
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        with self._lock:
            if self._size is None:
                self._size = self.usage()
            else:
                self._size += len(data)
            over = self._size > self.max_bytes
        if over:
            self.evict()

    def _entries(self) -> list[tuple[float, int, Path]]:
        entries = []
        if not self.root.is_dir():
            return entries
        for shard in os.scandir(self.root):
            if not shard.is_dir():
                continue
            for entry in os.scandir(shard.path):
                try:
                    st = entry.stat()
                except OSError:
                    continue
                entries.append((st.st_mtime, st.st_size, Path(entry.path)))
        return entries

    def usage(self) -> int:
        """Bytes the cache holds on disk now."""
        return sum(size for _, size, _ in self._entries())

    def evict(self) -> int:
        """Delete least recently used entries until under the low-water mark."""
        with self._lock:
            entries = sorted(self._entries())
            total = sum(size for _, size, _ in entries)
            target = int(self.max_bytes * _LOW_WATER)
            removed = 0
            for _, size, path in entries:
                if total <= target:
                    break
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                total -= size
                removed += 1
            self._size = total
            return removed
