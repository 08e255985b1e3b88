"""The Image API's HTTP face: a plain WSGI handler placed ahead of Flask's dispatch.

Viewers fetch tiles by the hundred per screen, so a tile should cost one catalog
lookup (cached) and one read, not a Flask request context, the site's language
and security hooks and its response processing. ``install`` puts ``ImageAPI`` in
front of the app for every ``/iiif/{2,3}/{image id}...`` path (image ids always
contain ``~``; presentation paths never do); everything else goes to Flask.

HTTP as the specs ask: 3.0 §2.2 / 2.1 §2.2 base URI redirect (303); §4 image
requests with the canonical and profile ``Link`` headers (3.0 §4.7, §6); §5 image
information, JSON-LD when asked (3.0 §5.1); CORS on every response (3.0 §7.1);
errors 400/404/501 with a short text saying what was wrong (3.0 §7.4).
Conditional requests (RFC 9110 §13): ETag and Last-Modified, 304 before rendering.

Caching (docs/deployment.md): under a pinned identifier (``<image id>.<tag>``, what
manifests and the site publish) an image response never changes, so it is
``immutable`` for a year; info.json there lives an hour (it also says what this
server's settings allow). Under the bare image id everything lives five minutes. A
pinned identifier of pixels since replaced is sent on (302, one minute) to the
current one: old URLs keep working and never get new pixels under a year's lifetime.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from email.utils import parsedate_to_datetime
from typing import Any

from archive.errors import ArchiveError, NotFound

from .image_service import ImageService, Source, Stale
from .info import CONTEXT_2, CONTEXT_3, PROFILE_2, PROFILE_3_URI

log = logging.getLogger(__name__)

CONTEXTS = {"3": CONTEXT_3, "2": CONTEXT_2}
PROFILES = {"3": PROFILE_3_URI, "2": PROFILE_2}
RETRY_AFTER = 5  # seconds, on a 503 whose error names none: tiles are retried soon
IMMUTABLE = "public, max-age=31536000, immutable"
PINNED_INFO = "public, max-age=3600"
BARE = "public, max-age=300"
MOVED = "public, max-age=60"
CLIENT_ERROR = "public, max-age=60"  # a CDN may absorb repeated bad URLs a little while
SERVER_ERROR = "no-store"
_STATUS = {
    200: "200 OK",
    204: "204 No Content",
    302: "302 Found",
    303: "303 See Other",
    304: "304 Not Modified",
    400: "400 Bad Request",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    500: "500 Internal Server Error",
    501: "501 Not Implemented",
    503: "503 Service Unavailable",
}
CORS = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "ETag, Last-Modified, Link, Content-Length"),
]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]


def is_image_path(path: str) -> bool:
    """``/iiif/2/…`` or ``/iiif/3/…`` whose first segment looks like an image id."""
    if not path.startswith(("/iiif/3/", "/iiif/2/")):
        return False
    return "~" in path[8:].split("/", 1)[0]


def install(app_wsgi: WSGIApp, api: ImageAPI) -> WSGIApp:
    """Wrap a WSGI app so Image API paths are answered by ``api``."""

    def dispatch(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if is_image_path(environ.get("PATH_INFO", "")):
            return api(environ, start_response)
        return app_wsgi(environ, start_response)

    dispatch.image_api = api  # type: ignore[attr-defined]
    return dispatch


class ImageAPI:
    def __init__(self, service: ImageService, public_url: str = "") -> None:
        self.service = service
        self.public_url = public_url.rstrip("/")

    # -- WSGI ----------------------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if method == "OPTIONS":
                return self._send(
                    start_response,
                    204,
                    [
                        ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"),
                        (
                            "Access-Control-Allow-Headers",
                            "Accept, If-None-Match, If-Modified-Since",
                        ),
                        ("Access-Control-Max-Age", "86400"),
                    ],
                    b"",
                    method,
                )
            if method not in ("GET", "HEAD"):
                return self._send(
                    start_response,
                    405,
                    [("Allow", "GET, HEAD, OPTIONS"), ("Content-Type", "text/plain")],
                    b"only GET and HEAD\n",
                    method,
                )
            return self._route(environ, start_response, method)
        except Stale as stale:
            return self._moved(environ, start_response, method, stale.current)
        except ArchiveError as exc:
            status = exc.http_status if exc.http_status in _STATUS else 500
            headers = [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Cache-Control", CLIENT_ERROR if status < 500 else SERVER_ERROR),
            ]
            if status == 503:  # storage or catalog away, or a damaged pyramid: retried soon
                headers.append(("Retry-After", str(exc.retry_after or RETRY_AFTER)))
                if not getattr(exc, "logged", False):
                    log.warning("Image API 503 on %s: %s", environ.get("PATH_INFO"), exc)
            return self._send(
                start_response,
                status,
                headers,
                (str(exc) + "\n").encode("utf-8", "replace"),
                method,
            )
        except Exception:  # a broken pyramid or a bug: logged, never a traceback to the client
            log.exception("Image API error on %s", environ.get("PATH_INFO"))
            return self._send(
                start_response,
                500,
                [("Content-Type", "text/plain"), ("Cache-Control", SERVER_ERROR)],
                b"internal error\n",
                method,
            )

    def _route(self, environ: dict, start_response: StartResponse, method: str):
        # WSGI gives the decoded path as latin-1 code points of the raw bytes.
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        version, rest = path[6], path[8:]
        parts = rest.split("/")
        image_id = parts[0]
        if len(parts) == 5:
            return self._image(environ, start_response, method, version, *parts)
        if len(parts) == 2 and parts[1] == "info.json":
            return self._info(environ, start_response, method, version, image_id)
        if len(parts) == 1 or (len(parts) == 2 and parts[1] == ""):
            self.service.lookup(image_id)  # 404 for unknown ids, not a redirect to nowhere
            location = f"{self.base_url(environ)}/iiif/{version}/{image_id}/info.json"
            return self._send(
                start_response, 303, [("Location", location), ("Cache-Control", BARE)], b"", method
            )
        raise NotFound(
            "not an Image API URL: expected info.json or "
            "{region}/{size}/{rotation}/{quality}.{format}"
        )

    def base_url(self, environ: dict) -> str:
        """``public_url`` when configured, else the root the request came to."""
        if self.public_url:
            return self.public_url
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST")
        if not host:
            host = environ.get("SERVER_NAME", "localhost")
            port = environ.get("SERVER_PORT", "")
            if port and port != ("443" if scheme == "https" else "80"):
                host = f"{host}:{port}"
        return f"{scheme}://{host}{environ.get('SCRIPT_NAME', '').rstrip('/')}"

    # -- endpoints -----------------------------------------------------------------------------
    def _info(
        self, environ: dict, start_response: StartResponse, method: str, version: str, image_id: str
    ):
        base = self.base_url(environ)
        body, src, pinned = self.service.info_json(version, image_id, base)
        etag = '"' + self.service.info_etag(version, src, base, image_id) + '"'
        if "application/ld+json" in environ.get("HTTP_ACCEPT", ""):
            ctype = f'application/ld+json;profile="{CONTEXTS[version]}"'
        else:
            ctype = "application/json"
        headers = [
            ("Link", f'<{PROFILES[version]}>;rel="profile"'),
            ("Vary", "Accept"),  # the media type follows Accept (3.0 §5.1)
            *self._validators(etag, src, PINNED_INFO if pinned else BARE),
        ]
        if self._not_modified(environ, etag, src):
            return self._send(start_response, 304, headers, b"", method)
        return self._send(start_response, 200, [("Content-Type", ctype), *headers], body, method)

    def _image(
        self,
        environ: dict,
        start_response: StartResponse,
        method: str,
        version: str,
        image_id: str,
        region: str,
        size: str,
        rotation: str,
        quality_format: str,
    ):
        result = self.service.plan(version, image_id, region, size, rotation, quality_format)
        etag = '"' + result.etag + '"'
        canonical = f"{self.base_url(environ)}/iiif/{version}/{image_id}/{result.plan.canonical}"
        headers = [
            ("Link", f'<{canonical}>;rel="canonical", <{PROFILES[version]}>;rel="profile"'),
            *self._validators(etag, result.source, IMMUTABLE if result.pinned else BARE),
        ]
        if self._not_modified(environ, etag, result.source):
            return self._send(start_response, 304, headers, b"", method)
        rendered = self.service.render(result)
        body = rendered.body
        # For whoever observes requests (web.metrics): a copied tile, or a render and
        # whether the derivative cache had it.
        if rendered.how == "stored":
            environ["archive.route"] = "tile"
        else:
            environ["archive.route"] = "render"
            environ["archive.cache"] = rendered.how
        headers.insert(0, ("Content-Type", body.media_type))
        if result.plan.format == "pdf":
            headers.append(("Content-Disposition", "inline"))
        return self._send(start_response, 200, headers, body.data, method)

    def _moved(self, environ: dict, start_response: StartResponse, method: str, current: str):
        """The same request on the current version's identifier, briefly cacheable."""
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        version, rest = path[6], path[8:]
        tail = rest.split("/", 1)[1] if "/" in rest else ""
        location = f"{self.base_url(environ)}/iiif/{version}/{current}/{tail or 'info.json'}"
        headers = [("Location", location), ("Cache-Control", MOVED)]
        return self._send(start_response, 302, headers, b"", method)

    # -- HTTP helpers --------------------------------------------------------------------------
    @staticmethod
    def _validators(etag: str, src: Source, cache_control: str) -> list[tuple[str, str]]:
        return [
            ("ETag", etag),
            ("Last-Modified", src.http_date),
            ("Cache-Control", cache_control),
        ]

    @staticmethod
    def _not_modified(environ: dict, etag: str, src: Source) -> bool:
        """RFC 9110 §13.1.2: If-None-Match wins; else If-Modified-Since (§13.1.3)."""
        match = environ.get("HTTP_IF_NONE_MATCH")
        if match is not None:
            tags = [t.strip().removeprefix("W/") for t in match.split(",")]
            return "*" in tags or etag in tags
        since = environ.get("HTTP_IF_MODIFIED_SINCE")
        if not since:
            return False
        try:
            when = parsedate_to_datetime(since)
        except (TypeError, ValueError, IndexError):
            return False
        if when.tzinfo is None:
            return False
        return src.last_modified <= when

    @staticmethod
    def _send(
        start_response: StartResponse,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        method: str,
    ) -> list[bytes]:
        headers = [*headers, *CORS]
        if status not in (204, 304):
            headers.append(("Content-Length", str(len(body))))
        start_response(_STATUS[status], headers)
        return [] if method == "HEAD" or status in (204, 304) else [body]
