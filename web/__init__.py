"""The public site and JSON API: ``create_app(config)`` is the one app factory."""

from __future__ import annotations

from flask import Flask

from archive.config import Config
from archive.context import Archive


def create_app(config: Config | None = None) -> Flask:
    config = config or Config.load()
    archive = Archive(config)
    from search import get_backend

    archive.search = get_backend(config)

    app = Flask(__name__)
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.extensions["archive"] = archive

    from iiif.routes import image_blueprint, presentation_blueprint

    from .api import api_blueprint
    from .site import site_blueprint

    app.register_blueprint(image_blueprint(archive))
    app.register_blueprint(presentation_blueprint(archive))
    app.register_blueprint(api_blueprint(archive))
    app.register_blueprint(site_blueprint(archive))
    return app
