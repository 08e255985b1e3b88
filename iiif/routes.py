"""Flask blueprints for the IIIF APIs: the only Flask import in ``iiif``."""

from __future__ import annotations

from flask import Blueprint

from archive.context import Archive


# --- Image API (3.0 at /iiif/3/, 2.1 at /iiif/2/) ------------------------------------------
def image_blueprint(archive: Archive) -> Blueprint:
    bp = Blueprint("iiif_image", __name__)
    return bp


# --- Presentation API 3.0 and Change Discovery ---------------------------------------------
def presentation_blueprint(archive: Archive) -> Blueprint:
    bp = Blueprint("iiif_presentation", __name__)
    return bp
