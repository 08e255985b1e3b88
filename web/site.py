"""The public, bilingual, server-rendered site."""

from __future__ import annotations

from flask import Blueprint

from archive.context import Archive


def site_blueprint(archive: Archive) -> Blueprint:
    bp = Blueprint("site", __name__)
    return bp
