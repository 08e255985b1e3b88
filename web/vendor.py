"""Front-end packages from npm, served by the site itself (no CDN: works on a closed network).

Only the files listed in ``ALLOWED`` are reachable; the URL carries the package
version so a browser may cache them for a year. Responses are gzipped once and
kept in memory, because the viewers are large and never change while we run.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
import threading
from pathlib import Path

from flask import Blueprint, Response, abort, request

NODE_MODULES = Path(__file__).resolve().parents[1] / "node_modules"

# package -> {public name: path inside the package}
ALLOWED: dict[str, dict[str, str]] = {
    "openseadragon": {"openseadragon.min.js": "build/openseadragon/openseadragon.min.js"},
    "mirador": {"mirador.min.js": "dist/mirador.min.js"},
    "axe-core": {"axe.min.js": "axe.min.js"},
}


def package_version(package: str, root: Path = NODE_MODULES) -> str:
    """The installed version (from its package.json), or "" when npm has not installed it."""
    try:
        return json.loads((root / package / "package.json").read_text("utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return ""


class _Cache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[Path, tuple[bytes, bytes, str]] = {}

    def get(self, path: Path) -> tuple[bytes, bytes, str]:
        """(raw, gzipped, etag) of a file, read once."""
        with self._lock:
            if path not in self._items:
                raw = path.read_bytes()
                etag = hashlib.sha256(raw).hexdigest()[:20]
                self._items[path] = (raw, gzip.compress(raw, 6, mtime=0), etag)
            return self._items[path]


def vendor_blueprint(root: Path = NODE_MODULES) -> Blueprint:
    bp = Blueprint("vendor", __name__, url_prefix="/vendor")
    cache = _Cache()
    versions = {name: package_version(name, root) for name in ALLOWED}

    @bp.get("/<package>/<name>")
    def asset(package: str, name: str) -> Response:
        inner = ALLOWED.get(package, {}).get(name)
        path = root / package / inner if inner else None
        if path is None or not path.is_file():
            abort(404)
        raw, packed, etag = cache.get(path)
        if request.if_none_match.contains(etag):
            resp = Response(status=304)
        elif "gzip" in request.headers.get("Accept-Encoding", ""):
            resp = Response(packed, mimetype=_mimetype(name))
            resp.headers["Content-Encoding"] = "gzip"
        else:
            resp = Response(raw, mimetype=_mimetype(name))
        resp.set_etag(etag)
        resp.vary.add("Accept-Encoding")
        pinned = request.args.get("v") == versions.get(package)
        resp.cache_control.public = True
        resp.cache_control.max_age = 31_536_000 if pinned else 3600
        if pinned:
            resp.cache_control.immutable = True
        return resp

    return bp


def _mimetype(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"
