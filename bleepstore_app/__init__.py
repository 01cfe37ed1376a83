"""BleepStore: an S3-compatible object store on Flask.

``create_app`` is the only place where the pieces are wired together.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

__version__ = "0.1.0"

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


def create_app(overrides: Mapping[str, Any] | None = None, settings=None):
    """Build the WSGI app: settings, metadata, storage, the S3 blueprint.

    ``overrides`` maps dotted setting names to values (tests use it). Start-up
    recovery is not run here: it runs once per server start (``recovery.py``).
    """
    from flask import Flask

    from .config import load_settings
    from .extensions import migrate
    from .metadata.engine import Database, make_engine
    from .metadata.store import MetadataStore
    from .s3.addressing import AddressingMiddleware
    from .s3.dispatch import AnythingConverter, AppState, blueprint, register_http_errors
    from .service import Services
    from .recovery import start_reaper
    from .storage import make_storage

    settings = settings or load_settings(overrides=overrides)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    app = Flask(__name__, static_folder=None)
    app.url_map.merge_slashes = False
    app.url_map.converters["anything"] = AnythingConverter
    app.config["BLEEPSTORE_SETTINGS"] = settings
    db = Database(make_engine(settings))
    services = Services(settings=settings, meta=MetadataStore(db), storage=make_storage(settings))
    app.extensions["bleepstore"] = AppState(services)
    migrate.init_app(app, db=db, directory=MIGRATIONS_DIR)
    app.register_blueprint(blueprint)
    register_http_errors(app)
    app.wsgi_app = AddressingMiddleware(app.wsgi_app, settings.virtual_host_domains)
    start_reaper(services)
    return app
