"""Pyramids and ingest reports in S3-compatible object storage (``storage_url = s3://...``).

Keys mirror the local layout under the URL's prefix: ``<prefix>/xx/<id>.<version>.tif``
and ``<prefix>/reports/ingest-*.json``. An object appears whole or not at all (a PUT,
or a multipart upload completed), so a committed key is a finished pyramid; a key that
exists is never written again. The endpoint, region and credentials are boto3's own
settings (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``, ``AWS_PROFILE`` and the files behind it), so AWS, Sakura, an
Azure gateway or an on-premises server work unchanged.

Every request is bounded: ``storage_timeout`` seconds to connect and for each read,
one retry, then ``StorageUnavailable`` (a 503 for image requests). Clients are made
per process (after a fork) and shared by its threads.

Reads go through a ``BlockCache`` (``storage_read_cache_mb`` per process), as GDAL's
/vsicurl/ reads: aligned blocks of ``storage_block_kb``, the missing blocks of one read
fetched in one GET, recently used ones kept, and a block already being fetched by
another thread waited for rather than fetched twice. libvips writes a level's tiles in
order, so a block holds a run of neighbours: the tiles a viewer asks for next. Objects
are immutable (versioned keys), so a kept block never goes stale.
"""

from __future__ import annotations

import http.client
import os
import re
import select
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, StorageUnavailable
from .storage import (
    REPORT_PREFIX,
    SUFFIX,
    Home,
    PyramidFile,
    PyramidStore,
    StoredPyramid,
    parse_name,
    relative_name,
)

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MISSING = {"NoSuchKey", "404", "NotFound"}
READ_AHEAD = 64 * 1024  # what a parser's small reads fetch at once (TIFF directories)
MULTIPART_THRESHOLD = 16 * 1024 * 1024
URL_LIFETIME = 3600  # seconds a presigned GET URL is valid
URL_REFRESH = 600  # ... and how long one is reused (well inside that, and inside STS tokens)


def _storage_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError
    from urllib3.exceptions import HTTPError

    return (BotoCoreError, ClientError, HTTPError, OSError)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class BlockCache:
    """Blocks of immutable objects, keyed by (object key, block number), least recently
    used dropped first once their bytes pass ``limit``. Shared by a process's threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._blocks: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, int], threading.Event] = {}
        self.sizes: dict[str, int] = {}  # of the objects read, learnt from their first GET
        self.gets = 0  # GETs sent for blocks (for tests and benchmarks)

    def __len__(self) -> int:
        return len(self._blocks)

    def get(self, key: tuple[str, int]) -> bytes | None:
        with self._lock:
            data = self._blocks.get(key)
            if data is not None:
                self._blocks.move_to_end(key)
            return data

    def put(self, key: tuple[str, int], data: bytes) -> None:
        with self._lock:
            old = self._blocks.pop(key, None)
            if old is not None:
                self.size -= len(old)
            self._blocks[key] = data
            self.size += len(data)
            while self.size > self.limit and self._blocks:
                _, dropped = self._blocks.popitem(last=False)
                self.size -= len(dropped)

    def claim(self, keys: list[tuple[str, int]]):
        """Split missing blocks into those this thread fetches (now marked pending) and
        the events of those another thread is fetching already."""
        mine, theirs = [], []
        with self._lock:
            for key in keys:
                if key in self._blocks:
                    continue  # arrived meanwhile
                event = self._pending.get(key)
                if event is None:
                    self._pending[key] = threading.Event()
                    mine.append(key)
                else:
                    theirs.append((key, event))
        return mine, theirs

    def release(self, keys: list[tuple[str, int]]) -> None:
        with self._lock:
            for key in keys:
                event = self._pending.pop(key, None)
                if event is not None:
                    event.set()


def _runs(numbers: list[int]) -> Iterator[tuple[int, int]]:
    """(first, last) of each run of consecutive numbers in a sorted list."""
    start = prev = numbers[0]
    for n in numbers[1:]:
        if n != prev + 1:
            yield start, prev
            start = n
        prev = n
    yield start, prev


_RETRIED = {403, 500, 502, 503, 504}


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """An idle kept-alive connection the server has closed (readable: EOF pending)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class _Connections:
    """Kept-alive HTTP connections of one process, by host, shared by its threads: a
    thread takes an idle one (or opens one) for each GET and gives it back once the
    response is read whole. ``timeout`` bounds the connect and every read."""

    def __init__(self, timeout: float, keep: int = 32) -> None:
        self.timeout = timeout
        self.keep = keep
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def get(
        self, target: tuple[str, str, int, str], headers: dict, *, fresh: bool = False
    ) -> tuple[int, str, bytes]:
        """One GET on an idle connection that is still open (or, ``fresh``, a new one)."""
        scheme, host, port, path = target
        where = (scheme, host, port)
        conn = None
        while not fresh:
            with self._lock:
                idle = self._idle.get(where)
                conn = idle.pop() if idle else None
            if conn is None or not _dropped(conn):
                break
            conn.close()  # closed by the server while idle (its keep-alive timeout)
            conn = None
        if conn is None:
            kind = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            conn = kind(host, port, timeout=self.timeout)
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            conn.close()
            raise
        if response.will_close:
            conn.close()
        else:
            with self._lock:
                idle = self._idle.setdefault(where, [])
                if len(idle) < self.keep:
                    idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()
        return response.status, response.getheader("Content-Range", ""), data


class S3File(PyramidFile):
    """Ranged reads of one object: ``read_range`` is at most one GET (none when its
    blocks are kept already; exactly the range without a block cache); ``read`` reads
    ahead ``READ_AHEAD`` bytes, so parsing a TIFF's directories takes a few."""

    def __init__(self, store: S3Store, key: str) -> None:
        self.store = store
        self.key = key
        self.size = -1  # learnt from the first response's Content-Range
        self._pos = 0
        self._window_start = 0
        self._window = b""

    def read_range(self, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        return self.store.get_range(self, offset, length)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            if self.size < 0:
                self.read_range(0, 1)
            n = max(0, self.size - self._pos)
        start, end = self._pos, self._pos + n
        w0, w1 = self._window_start, self._window_start + len(self._window)
        if not (w0 <= start and end <= w1):
            # With a block cache the blocks read ahead; a window of one keeps parsers'
            # small reads from looking the cache up one field at a time.
            ahead = self.store.block_size if self.store.read_cache else READ_AHEAD
            want = max(n, ahead)
            if self.size >= 0:
                want = max(0, min(want, self.size - start))
            self._window_start, self._window = start, self.read_range(start, want) if want else b""
            w0 = start
        data = self._window[start - w0 : end - w0]
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self._pos
        elif whence == 2:
            if self.size < 0:
                self.read_range(0, 1)
            offset += self.size
        self._pos = max(0, offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


class S3Store(PyramidStore):
    local = False

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        scratch: str | os.PathLike,
        timeout: float = 5.0,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        block_size: int = 64 * 1024,
        read_cache: int = 0,
    ) -> None:
        self.bucket = bucket
        self.block_size = block_size
        self.read_cache = read_cache  # bytes of blocks kept per process; 0: none
        self._blocks: BlockCache | None = None
        self._blocks_pid = -1
        self.prefix = prefix.strip("/")
        self.scratch = Path(scratch)
        self.timeout = timeout
        self.multipart_threshold = multipart_threshold
        self._client: Any = None
        self._pid = -1
        self._lock = threading.Lock()
        self._http: Any = None
        self._http_pid = -1
        self._urls: dict[str, tuple[tuple[str, str, int, str], float]] = {}

    @classmethod
    def from_url(
        cls, url: str, *, home: Home, timeout: float, block_kb: int = 64, read_cache_mb: int = 0
    ) -> S3Store:
        rest = url.split("://", 1)[1]
        bucket, _, prefix = rest.partition("/")
        if not _BUCKET_RE.match(bucket):
            raise ConfigError(
                f"storage_url: {url!r}: {bucket!r} is not a bucket name "
                "(3 to 63 characters: lower-case letters, digits, dots and hyphens)"
            )
        return cls(
            bucket,
            prefix,
            scratch=home.scratch,
            timeout=timeout,
            block_size=block_kb * 1024,
            read_cache=read_cache_mb * 1024 * 1024,
        )

    def __getstate__(self) -> dict:  # sent to tiling processes: they make their own client
        state = dict(self.__dict__)
        state.update(_client=None, _pid=-1, _lock=None, _http=None, _http_pid=-1, _urls={})
        state.update(_blocks=None, _blocks_pid=-1)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- the client ----------------------------------------------------------------------------
    @property
    def client(self):
        if self._client is None or self._pid != os.getpid():
            with self._lock:
                if self._client is None or self._pid != os.getpid():
                    import boto3
                    from botocore.config import Config

                    config = Config(
                        connect_timeout=self.timeout,
                        read_timeout=self.timeout,
                        retries={"max_attempts": 2, "mode": "standard"},
                        max_pool_connections=32,
                        # Checksums only where S3 requires them: many S3-compatible
                        # servers do not know the newer CRC trailers.
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required",
                    )
                    self._client = boto3.session.Session().client("s3", config=config)
                    self._pid = os.getpid()
        return self._client

    @property
    def endpoint(self) -> str:
        try:
            return str(self.client.meta.endpoint_url)
        except Exception:  # noqa: BLE001 - only for messages
            return "the default endpoint"

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def location(self) -> str:
        return self.url

    def key(self, image_id: str, version: str) -> str:
        name = relative_name(image_id, version)
        return f"{self.prefix}/{name}" if self.prefix else name

    def _report_key(self, name: str) -> str:
        if "/" in name or not name.startswith(REPORT_PREFIX):
            raise FileNotFoundError(name)
        return f"{self.prefix}/reports/{name}" if self.prefix else f"reports/{name}"

    def _unavailable(self, what: str, exc: BaseException) -> StorageUnavailable:
        code = _code(exc)
        reason = f"{code}: {exc}" if code and code not in str(exc) else str(exc)
        return StorageUnavailable(f"storage {self.url} unavailable ({what}): {reason}")

    # -- the contract --------------------------------------------------------------------------
    def check(self) -> None:
        """The bucket exists and these credentials may use it: one line naming the setting."""
        from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise ConfigError(
                f"storage_url: {self.url}: no usable AWS credentials ({exc}); set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
            ) from None
        except ClientError as exc:
            code = _code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                reason = f"bucket {self.bucket!r} does not exist at {self.endpoint}"
            elif code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                reason = (
                    f"access to bucket {self.bucket!r} at {self.endpoint} denied: check the "
                    "AWS credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE)"
                )
            else:
                reason = f"{self.endpoint} answered {code or exc}"
            raise ConfigError(f"storage_url: {self.url}: {reason}") from None
        except _storage_errors() as exc:
            raise ConfigError(
                f"storage_url: {self.url}: cannot reach {self.endpoint}: {exc}"
            ) from None
        except ValueError as exc:  # e.g. a malformed AWS_ENDPOINT_URL
            raise ConfigError(f"storage_url: {self.url}: {exc}") from None

    def exists(self, image_id: str, version: str) -> bool:
        key = self.key(image_id, version)
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except _storage_errors() as exc:
            if _code(exc) in _MISSING:
                return False
            raise self._unavailable(f"HEAD {key}", exc) from None

    def open(self, image_id: str, version: str) -> S3File:
        return S3File(self, self.key(image_id, version))

    # -- ranged reads: the image server's hot path ----------------------------------------------
    # A tile is one ranged GET. Through botocore each costs ~2 ms of Python (endpoint
    # rules, signing, parsing, hooks), more than copying the tile out of a local file by
    # 20 times. So GETs go to a presigned URL instead (botocore works out the endpoint,
    # the addressing style and the signature once per object and hour), sent on kept-alive
    # http.client connections: measured against s3proxy, ~0.3 ms of CPU a GET where
    # urllib3 took ~0.8 ms (it parses and re-encodes the long signed URL on every call).
    def _connections(self) -> _Connections:
        if getattr(self, "_http", None) is None or self._http_pid != os.getpid():
            with self._lock:
                if getattr(self, "_http", None) is None or self._http_pid != os.getpid():
                    self._http = _Connections(self.timeout)
                    self._http_pid = os.getpid()
        return self._http

    def _signed_url(self, key: str, fresh: bool = False) -> tuple[str, str, int, str]:
        """(scheme, host, port, request target) of a presigned GET of ``key``."""
        now = time.monotonic()
        cached = self._urls.get(key)
        if cached is not None and not fresh and now - cached[1] < URL_REFRESH:
            return cached[0]
        url = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=URL_LIFETIME
        )
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or (443 if scheme == "https" else 80)
        target = (scheme, parts.hostname or "", port, f"{parts.path or '/'}?{parts.query}")
        if len(self._urls) >= 4096:
            self._urls.clear()
        self._urls[key] = (target, now)
        return target

    def _request(
        self, target: tuple[str, str, int, str], headers: dict, fresh: bool = False
    ) -> tuple[int, str, bytes]:
        """One GET: (status, Content-Range, body). OSError or HTTPException on failure.
        ``fresh``: on a new connection (a retry after a failed one)."""
        return self._connections().get(target, headers, fresh=fresh)

    @property
    def blocks(self) -> BlockCache | None:
        """This process's block cache (a forked worker starts with an empty one)."""
        if not self.read_cache:
            return None
        if self._blocks is None or self._blocks_pid != os.getpid():
            with self._lock:
                if self._blocks is None or self._blocks_pid != os.getpid():
                    self._blocks = BlockCache(self.read_cache)
                    self._blocks_pid = os.getpid()
        return self._blocks

    def get_range(self, handle: S3File, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (fewer at the end of the object): from kept
        blocks, the missing ones in one GET per run of neighbours. A read larger than an
        eighth of the cache (a backup's stream, a huge tile) bypasses it, so it does not
        flush the tiles viewers ask for."""
        cache = self.blocks
        if cache is None or length > cache.limit // 8:
            return self.fetch(handle, offset, length)
        bs = self.block_size
        first, last = offset // bs, (offset + length - 1) // bs
        key = handle.key
        if handle.size < 0:  # known from another handle's GET, when its blocks are kept
            handle.size = cache.sizes.get(key, -1)
        if first == last:  # the common case: a tile inside one block
            data = cache.get((key, first))
            if data is None:
                data = self._blocks_for(handle, cache, first, first)[first]
            start = offset - first * bs
            return data[start : start + length]
        found = {n: cache.get((key, n)) for n in range(first, last + 1)}
        missing = [n for n, data in found.items() if data is None]
        if missing:
            found.update(self._blocks_for(handle, cache, missing[0], missing[-1], missing))
        joined = b"".join(found[n] for n in range(first, last + 1))
        start = offset - first * bs
        return joined[start : start + length]

    def _blocks_for(
        self,
        handle: S3File,
        cache: BlockCache,
        first: int,
        last: int,
        wanted: list[int] | None = None,
    ) -> dict[int, bytes]:
        """The blocks ``wanted`` (default ``first..last``), fetched: this thread's share in
        one GET per run of consecutive blocks, the rest awaited from the threads already
        fetching them (or fetched here when theirs failed)."""
        bs, key = self.block_size, handle.key
        wanted = wanted if wanted is not None else list(range(first, last + 1))
        mine, theirs = cache.claim([(key, n) for n in wanted])
        out: dict[int, bytes] = {}
        try:
            numbers = [n for _, n in mine]
            for lo, hi in _runs(numbers) if numbers else ():
                data = self.fetch(handle, lo * bs, (hi - lo + 1) * bs)
                cache.gets += 1
                if handle.size >= 0 and key not in cache.sizes:
                    if len(cache.sizes) >= 65536:
                        cache.sizes.clear()
                    cache.sizes[key] = handle.size
                for n in range(lo, hi + 1):
                    block = data[(n - lo) * bs : (n - lo + 1) * bs]
                    cache.put((key, n), block)
                    out[n] = block
        finally:
            cache.release(mine)
        for (_, n), event in theirs:
            event.wait(4 * self.timeout + 1)
            block = cache.get((key, n))
            out[n] = block if block is not None else self.fetch(handle, n * bs, bs)
        for n in wanted:  # arrived between the lookup and the claim
            if n not in out:
                block = cache.get((key, n))
                out[n] = block if block is not None else self.fetch(handle, n * bs, bs)
        return out

    def fetch(self, handle: S3File, offset: int, length: int) -> bytes:
        """One ranged GET (two at most: a failed connection, a 5xx or a 403 is tried once
        more, the last on a freshly signed URL); FileNotFoundError for a missing object."""
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        try:
            for attempt in (0, 1):
                target = self._signed_url(handle.key, fresh=attempt == 1)
                try:
                    status, content_range, data = self._request(target, headers, attempt == 1)
                except (http.client.HTTPException, OSError):
                    if attempt:
                        raise
                    continue  # a kept-alive connection the server closed, say: once more,
                    # on a new connection (the other idle ones may be just as dead)
                if attempt or status not in _RETRIED:
                    break  # 403 once: credentials rotated since the URL was signed
        except (http.client.HTTPException, OSError) as exc:
            raise self._unavailable(f"GET {handle.key}", exc) from None
        except _storage_errors() as exc:  # signing: no credentials, say
            raise self._unavailable(f"GET {handle.key}", exc) from None
        if status == 404:
            raise FileNotFoundError(f"{self.url}: no object {handle.key}")
        if status == 416:  # at or past the end
            return b""
        if status == 200:  # a server that ignores Range: the whole object came
            handle.size = len(data)
            return data[offset : offset + length]
        if status != 206:
            reason = data[:200].decode("utf-8", "replace")
            raise StorageUnavailable(
                f"storage {self.url} unavailable (GET {handle.key}): HTTP {status} {reason}"
            )
        if handle.size < 0:
            total = content_range.rpartition("/")[2]
            handle.size = int(total) if total.isdigit() else offset + len(data)
        return data

    def get_range_boto(self, handle: S3File, offset: int, length: int) -> bytes:
        """The same through botocore (kept to measure the fast path against)."""
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=handle.key, Range=f"bytes={offset}-{offset + length - 1}"
            )
            data = response["Body"].read()
        except _storage_errors() as exc:
            code = _code(exc)
            if code in _MISSING:
                raise FileNotFoundError(f"{self.url}: no object {handle.key}") from None
            if code == "InvalidRange":  # at or past the end
                return b""
            raise self._unavailable(f"GET {handle.key}", exc) from None
        if handle.size < 0:
            total = str(response.get("ContentRange", "")).rpartition("/")[2]
            handle.size = int(total) if total.isdigit() else offset + len(data)
        return data

    def temp_path(self, suffix: str = SUFFIX) -> Path:
        """A local file to tile into; ``commit`` uploads it."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        return self.scratch / f"{uuid.uuid4().hex}{suffix}"

    def commit(self, temp: Path, image_id: str, version: str, *, fsync: bool = True) -> str:
        """Upload a finished pyramid under its versioned key (multipart when large), then
        drop the local file. A key that exists already holds these very bytes: kept."""
        from boto3.s3.transfer import TransferConfig

        key = self.key(image_id, version)
        try:
            if not self.exists(image_id, version):
                transfer = TransferConfig(
                    multipart_threshold=self.multipart_threshold,
                    multipart_chunksize=max(self.multipart_threshold, 5 * 1024 * 1024),
                    max_concurrency=4,
                )
                self.client.upload_file(
                    str(temp),
                    self.bucket,
                    key,
                    ExtraArgs={"ContentType": "image/tiff"},
                    Config=transfer,
                )
        except StorageUnavailable:
            raise
        except _storage_errors() as exc:
            raise self._unavailable(f"upload {key}", exc) from None
        Path(temp).unlink(missing_ok=True)
        return f"s3://{self.bucket}/{key}"

    def remove(self, image_id: str, version: str) -> None:
        key = self.key(image_id, version)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except _storage_errors() as exc:
            if _code(exc) not in _MISSING:
                raise self._unavailable(f"DELETE {key}", exc) from None

    def _list(self, prefix: str) -> Iterator[dict]:
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                yield from page.get("Contents", [])
        except _storage_errors() as exc:
            raise self._unavailable(f"LIST {prefix}", exc) from None

    def files(self) -> Iterator[StoredPyramid]:
        base = f"{self.prefix}/" if self.prefix else ""
        for obj in self._list(base):
            rel = obj["Key"][len(base) :]
            shard_, _, name = rel.partition("/")
            parsed = parse_name(name) if len(shard_) == 2 and "/" not in name else None
            if parsed:
                yield StoredPyramid(parsed[0], parsed[1], f"s3://{self.bucket}/{obj['Key']}")

    def sweep(self, keep: set[tuple[str, str]]) -> int:
        removed = super().sweep(keep)
        if self.scratch.is_dir():  # tiled but never uploaded (a run killed meanwhile)
            for path in self.scratch.iterdir():
                path.unlink(missing_ok=True)
        return removed

    # -- ingest reports ------------------------------------------------------------------------
    def put_report(self, name: str, data: bytes) -> str:
        key = self._report_key(name)
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType="application/json"
            )
        except _storage_errors() as exc:
            raise self._unavailable(f"PUT {key}", exc) from None
        return f"s3://{self.bucket}/{key}"

    def reports(self) -> list[str]:
        base = self._report_key(REPORT_PREFIX).rsplit("/", 1)[0] + "/"
        names = [o["Key"][len(base) :] for o in self._list(base + REPORT_PREFIX)]
        return sorted(n for n in names if n.endswith(".json") and "/" not in n)

    def get_report(self, name: str) -> bytes:
        key = self._report_key(name)
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except _storage_errors() as exc:
            if _code(exc) in _MISSING:
                raise FileNotFoundError(f"{self.url}: no report {name}") from None
            raise self._unavailable(f"GET {key}", exc) from None

    def report_location(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._report_key(name)}"
