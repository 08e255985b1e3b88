"""The JSON research API under /api."""

from __future__ import annotations

from flask import Blueprint

from archive.context import Archive


def api_blueprint(archive: Archive) -> Blueprint:
    bp = Blueprint("api", __name__, url_prefix="/api")
    return bp
