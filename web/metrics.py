"""Metrics for the people on call: ``/metrics`` in the Prometheus text format.

What is measured, and where:

- every HTTP request, by kind of route (``route_kind``) and status, with a latency
  histogram per kind, in the ``Observer`` WSGI middleware that wraps the whole site
  (tiles included; the Image API marks its answers ``tile`` or ``render`` and, for
  renders, whether the derivative cache had them);
- catalog and search latency per method, by timing the methods of this worker's
  catalog and search backend (``instrument``);
- the archive's state, read when scraped (``ArchiveState``): records, the last
  ingest's figures from its report, and the search index's lag behind the catalog.

Several server worker processes: ``archive serve`` gives each run its own directory
in ``PROMETHEUS_MULTIPROC_DIR`` before any worker starts, so every worker's counters
live in memory-mapped files there and any scrape adds them all up
(prometheus_client's multiprocess mode). Without it (one process, the tests' Flask
client) the counters are this process's own.

Not public by default: ``metrics_listen`` serves it on an address of its own (a small
process ``archive serve`` starts beside the workers: ``python -m web.metrics``), and
``metrics_token`` opens ``/metrics`` on the public port to ``Authorization: Bearer``.
"""

from __future__ import annotations

import functools
import hmac
import inspect
import json
import logging
import os
import sys
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from time import perf_counter

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from archive.config import Config
from archive.context import Archive
from iiif.image_wsgi import is_image_path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Metrics of this process; in multiprocess mode their values live in the run's directory.
REGISTRY = CollectorRegistry(auto_describe=False)
# A stored tile takes ~0.1 ms, a render tens of ms, a search a few ms, an export seconds.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
REQUESTS = Counter(
    "archive_http_requests",
    "HTTP requests answered, by kind of route and status.",
    ["route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "archive_http_request_duration_seconds",
    "Time from a request reaching the application to its last byte handed to the server.",
    ["route"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)
IMAGE_CACHE = Counter(
    "archive_image_cache_requests",
    "Image requests that are not a stored tile, by whether the derivative cache had them.",
    ["result"],
    registry=REGISTRY,
)
CATALOG = Histogram(
    "archive_catalog_call_duration_seconds",
    "Catalog calls of the server, by method.",
    ["method"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)
SEARCH = Histogram(
    "archive_search_call_duration_seconds",
    "Search backend calls of the server, by method.",
    ["method"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)
ROUTES = (
    "tile",
    "render",
    "image",
    "info",
    "manifest",
    "changes",
    "page",
    "api",
    "search",
    "oai",
    "static",
    "metrics",
)
access_log = logging.getLogger("archive.access")


def route_kind(path: str) -> str:
    """The kind of route a path is, for the ``route`` label (a few values, never the path).

    Image requests are ``image`` here; the Image API itself refines them to ``tile``
    (a stored tile copied) or ``render``.
    """
    if path.startswith("/iiif/"):
        if is_image_path(path):
            return "info" if path.endswith("/info.json") else "image"
        return "changes" if path.startswith("/iiif/3/activity/") else "manifest"
    if path.startswith("/api/"):
        return "search" if path.startswith(("/api/search", "/api/suggest")) else "api"
    if path == "/search":
        return "search"
    if path.startswith("/oai"):
        return "oai"
    if path.startswith(("/static/", "/vendor/")) or path in ("/favicon.ico", "/robots.txt"):
        return "static"
    if path == "/metrics":
        return "metrics"
    return "page"


# --- the middleware ---------------------------------------------------------------------------
FLUSH_SECONDS = 1.0
_BOUNDS = (*_BUCKETS, float("inf"))


class _Tally:
    """One thread's requests since the last flush, in plain Python numbers: a tile must
    not pay for prometheus_client's locks and memory-mapped writes on every request.
    ``counts`` is keyed by (kind, status, latency bucket): one dictionary update counts
    a request and its latency at once."""

    __slots__ = ("lock", "counts", "seconds", "cache")

    def __init__(self) -> None:
        self.lock = threading.Lock()  # taken by its thread and, once a second, the flusher
        self.counts: dict[tuple[str, str, int], int] = {}
        self.seconds: dict[str, float] = {}  # kind -> sum of seconds
        self.cache: dict[str, int] = {}

    def take(self) -> tuple[dict, dict, dict]:
        with self.lock:
            out = self.counts, self.seconds, self.cache
            self.counts, self.seconds, self.cache = {}, {}, {}
        return out


class Observer:
    """Counts and times every request (``metrics``) and, with ``log_access``, writes one
    access-log record per request (method, path, status, duration and bytes) for the
    JSON log. Also answers ``/metrics`` on this port when ``token`` is set.

    Each thread tallies its requests in plain numbers; a thread of each worker process
    adds them to the prometheus_client metrics once a second (and a scrape answered by
    this process does so before reading), so a scrape sees every worker's requests at
    most a second late, and a request costs a lock nobody else holds and a few additions.
    """

    def __init__(
        self,
        app: Callable,
        archive: Archive,
        *,
        metrics: bool,
        log_access: bool,
        token: str = "",
    ) -> None:
        self.app = app
        self.archive = archive
        self.metrics = metrics
        self.log_access = log_access
        self.expected = f"Bearer {token}".encode() if token else b""
        self._local = threading.local()
        self._tallies: list[_Tally] = []
        self._tallies_lock = threading.Lock()
        self._flusher_pid = 0  # the process whose flushing thread runs (none after a fork)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = perf_counter()
        if self.expected and environ.get("PATH_INFO") == "/metrics":
            return self._metrics(environ, start_response)
        seen: list = []

        def start(status: str, headers: list, exc_info=None):
            seen[:] = (status, headers)
            return start_response(status, headers, exc_info)

        try:
            body = self.app(environ, start)
        except BaseException:
            seen[:] = ("500 Internal Server Error", [])
            self.done(environ, seen, started, 0)
            raise
        if type(body) is list:  # the Image API's answers: done now
            self.done(environ, seen, started, sum(map(len, body)) if self.log_access else 0)
            return body
        return _Watched(body, self, environ, seen, started)

    def done(self, environ: dict, seen: list, started: float, sent: int) -> None:
        elapsed = perf_counter() - started
        status = seen[0][:3] if seen else "500"
        kind = environ.get("archive.route") or route_kind(environ.get("PATH_INFO", ""))
        if self.metrics:
            try:
                tally = self._local.tally
            except AttributeError:  # this thread's first request
                tally = self._new_tally()
            key = (kind, status, bisect_left(_BOUNDS, elapsed))
            cache = environ.get("archive.cache")
            with tally.lock:
                counts, seconds = tally.counts, tally.seconds
                counts[key] = counts.get(key, 0) + 1
                seconds[kind] = seconds.get(kind, 0.0) + elapsed
                if cache is not None:
                    tally.cache[cache] = tally.cache.get(cache, 0) + 1
        if self.log_access:
            self._log(environ, status, elapsed, seen[1] if seen else [], sent, kind)

    def _new_tally(self) -> _Tally:
        tally = self._local.tally = _Tally()
        with self._tallies_lock:
            if self._flusher_pid != os.getpid():  # first request of this (forked) process
                self._flusher_pid = os.getpid()
                self._tallies = []
                threading.Thread(target=self._flush_forever, name="metrics", daemon=True).start()
            self._tallies.append(tally)
        return tally

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()

    def flush(self) -> None:
        """Add every thread's tally to the prometheus_client metrics."""
        with self._tallies_lock:
            tallies = list(self._tallies)
        for tally in tallies:
            counts, seconds, cache = tally.take()
            requests: dict[tuple[str, str], int] = {}
            for (kind, status, bucket), count in counts.items():
                requests[kind, status] = requests.get((kind, status), 0) + count
                # Histogram keeps a count per bucket (not cumulative) and a sum, as we do.
                LATENCY.labels(kind)._buckets[bucket].inc(count)
            for (kind, status), count in requests.items():
                REQUESTS.labels(kind, status).inc(count)
            for kind, total in seconds.items():
                LATENCY.labels(kind)._sum.inc(total)
            for result, count in cache.items():
                IMAGE_CACHE.labels(result).inc(count)

    @staticmethod
    def _log(environ, status, elapsed, headers, sent, kind) -> None:
        length = next((v for k, v in headers if k.lower() == "content-length"), None)
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        access_log.info(
            "%s %s %s",
            environ.get("REQUEST_METHOD"),
            path,
            status,
            extra={
                "http": {
                    "type": "access",
                    "method": environ.get("REQUEST_METHOD", ""),
                    "path": path,
                    "query": environ.get("QUERY_STRING", ""),
                    "status": int(status) if status.isdigit() else 0,
                    "duration_ms": round(elapsed * 1000, 3),
                    "bytes": int(length) if length and length.isdigit() else sent,
                    "route": kind,
                    "remote_addr": environ.get("REMOTE_ADDR", ""),
                    "user_agent": environ.get("HTTP_USER_AGENT", ""),
                    "protocol": environ.get("SERVER_PROTOCOL", ""),
                }
            },
        )

    def _metrics(self, environ: dict, start_response: Callable) -> list[bytes]:
        given = environ.get("HTTP_AUTHORIZATION", "").encode("latin-1", "replace")
        if not hmac.compare_digest(given, self.expected):
            body = b"a bearer token (the metrics_token setting) is needed for /metrics\n"
            start_response(
                "401 Unauthorized",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("WWW-Authenticate", 'Bearer realm="metrics"'),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        self.flush()
        try:
            body = exposition(self.archive)
        except Exception as exc:  # noqa: BLE001 - the catalog unreadable: say so, never a 500
            logging.getLogger(__name__).error("metrics: %s", exc)
            body = f"unavailable: {exc}\n".encode()
            start_response(
                "503 Service Unavailable",
                [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
            )
            return [body]
        start_response(
            "200 OK",
            [
                ("Content-Type", CONTENT_TYPE_LATEST),
                ("Cache-Control", "no-store"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


class _Watched:
    """A response body sent piece by piece (pages, exports): finished when the server
    closes it, as WSGI (PEP 3333) says it must."""

    def __init__(self, body, observer: Observer, environ: dict, seen: list, started: float):
        self.body, self.observer, self.environ = body, observer, environ
        self.seen, self.started, self.sent = seen, started, 0

    def __iter__(self):
        for chunk in self.body:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.observer.done(self.environ, self.seen, self.started, self.sent)


# --- catalog and search latency ---------------------------------------------------------------
def instrument(archive: Archive) -> None:
    """Time the public methods of this archive's catalog and search backend (on the
    instances: the classes, and other archives, are untouched)."""
    for target, histogram in ((archive.catalog, CATALOG), (archive.search, SEARCH)):
        if target is None:
            continue
        for name, member in inspect.getmembers(type(target)):
            # generation() is asked on every tile (cache validity), the locks are not calls
            if name.startswith("_") or name in (
                "close",
                "transaction",
                "db",
                "generation",
                "write_lock",
                "lock_holder",
            ):
                continue
            if not inspect.isfunction(member) or inspect.isgeneratorfunction(member):
                continue
            setattr(target, name, _timed(histogram, name, getattr(target, name)))


def _timed(histogram: Histogram, name: str, method: Callable) -> Callable:
    child = None  # made on the first call, so methods never called show no series

    @functools.wraps(method)
    def timed(*args, **kwargs):
        nonlocal child
        started = perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            if child is None:
                child = histogram.labels(name)
            child.observe(perf_counter() - started)

    return timed


# --- the archive's state, read when scraped ---------------------------------------------------
class ArchiveState:
    """Gauges read from the catalog, the last ingest report and the search backend."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive

    def describe(self):
        return []

    def collect(self):
        archive = self.archive
        records = GaugeMetricFamily(
            "archive_records", "Records in the catalog.", labels=["visibility"]
        )
        public = archive.catalog.count()
        records.add_metric(["all"], archive.catalog.count(public_only=False))
        records.add_metric(["public"], public)
        yield records
        yield from _ingest_gauges(latest_report(archive))
        state = archive.search_state()
        yield _gauge("archive_search_up", "1 when the search backend answers.", state["reachable"])
        documents = state.get("documents")
        if isinstance(documents, int):
            yield _gauge("archive_search_documents", "Documents in the search index.", documents)
            yield _gauge(
                "archive_search_lag_documents",
                "Public records of the catalog the search index lacks (or, below 0, has extra).",
                public - documents,
            )
        behind = state.get("behind")
        yield _gauge(
            "archive_search_behind",
            "1 while the search index misses catalog changes (ingest running or interrupted, "
            "cluster down): `archive ingest` or `archive reindex` catches up.",
            bool(behind),
        )
        since = _timestamp(behind[:20]) if behind else None
        yield _gauge(
            "archive_search_behind_seconds",
            "For how long the search index has been behind the catalog (0 when it is not).",
            max(0.0, time.time() - since) if since else 0,
        )


def latest_report(archive: Archive) -> dict | None:
    """The newest ingest report of the archive, or None (none yet, or unreadable)."""
    reports = sorted(archive.home.reports.glob("ingest-*.json"))
    if not reports:
        return None
    try:
        return json.loads(reports[-1].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _ingest_gauges(report: dict | None):
    if report is None:
        return
    institutions = report.get("institutions") or []
    finished = _timestamp(report.get("finished_at") or "")
    if finished:
        yield _gauge(
            "archive_last_ingest_finished_timestamp_seconds",
            "When the last ingest run finished (Unix time).",
            finished,
        )
    yield _gauge(
        "archive_last_ingest_duration_seconds",
        "How long the last ingest run took.",
        report.get("seconds") or 0,
    )
    yield _gauge(
        "archive_last_ingest_ok",
        "1 when every record of the last run succeeded.",
        bool(report.get("ok")),
    )
    yield _gauge(
        "archive_last_ingest_interrupted",
        "1 when the last run was interrupted (the next run resumes it).",
        bool(report.get("interrupted")),
    )
    outcomes = GaugeMetricFamily(
        "archive_last_ingest_records",
        "Records of the last ingest run, by outcome.",
        labels=["outcome"],
    )
    for outcome in ("added", "updated", "unchanged", "removed", "failed"):
        outcomes.add_metric([outcome], sum(int(i.get(outcome) or 0) for i in institutions))
    yield outcomes
    images = GaugeMetricFamily(
        "archive_last_ingest_images",
        "Images of the last ingest run: tiled or reused.",
        labels=["kind"],
    )
    images.add_metric(["tiled"], int(report.get("images_tiled") or 0))
    images.add_metric(["reused"], int(report.get("images_reused") or 0))
    yield images


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


def _timestamp(text: str) -> float | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


class _Local:
    """This process's own metrics, for a registry built per scrape."""

    def collect(self):
        return REGISTRY.collect()

    def describe(self):
        return []


def exposition(archive: Archive) -> bytes:
    """The text every scrape gets: requests and latencies of every worker, and the state."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Local())
    registry.register(ArchiveState(archive))
    return generate_latest(registry)


# --- the small server of its own (metrics_listen) ---------------------------------------------
def serve_forever(home: str, fd: int) -> None:
    """Answer GET /metrics on the listening socket ``fd`` (bound by ``archive serve``, so an
    address in use is its one-line start-up error), one scrape at a time."""
    import socket
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from search import get_backend

    archive = Archive(Config.load(home))
    archive.search = get_backend(archive.config)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            if self.path.split("?", 1)[0] != "/metrics":
                self._send(404, "text/plain; charset=utf-8", b"only /metrics here\n")
                return
            try:
                body = exposition(archive)
            except Exception as exc:  # noqa: BLE001 - a broken catalog: say so, keep serving
                logging.getLogger(__name__).error("metrics: %s", exc)
                self._send(503, "text/plain; charset=utf-8", f"unavailable: {exc}\n".encode())
                return
            self._send(200, CONTENT_TYPE_LATEST, body)

        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args) -> None:  # noqa: A002 - http.server's signature
            pass  # scrapes every few seconds would drown the log

    class Server(HTTPServer):
        def server_bind(self) -> None:  # the socket is bound already
            self.server_address = self.socket.getsockname()[:2]
            self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    sock = socket.socket(fileno=fd)
    server = Server(sock.getsockname()[:2], Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    try:
        server.serve_forever()
    finally:
        archive.close()


if __name__ == "__main__":  # python -m web.metrics HOME FD (started by `archive serve`)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C is decided by serve
    try:
        serve_forever(sys.argv[1], int(sys.argv[2]))
    except SystemExit:
        pass
