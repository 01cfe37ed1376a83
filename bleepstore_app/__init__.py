"""BleepStore: an S3-compatible object store on Flask.

``create_app`` is the only place where the pieces are wired together.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

__version__ = "0.1.0"



def _migrations_dir() -> str:
    """The Alembic environment: inside the package when installed from the wheel
    (setup.py maps the top-level migrations/ folder there), else the source tree's
    top-level migrations/ (a checkout or an editable install). The package's own copy
    is looked at first: beside an installed package sits site-packages, not ours."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "migrations", here.parent / "migrations"):
        if (candidate / "env.py").is_file() and (candidate / "alembic.ini").is_file():
            return str(candidate)
    return str(here.parent / "migrations")


MIGRATIONS_DIR = _migrations_dir()


def create_app(overrides: Mapping[str, Any] | None = None, settings=None):
    """Build the WSGI app: settings, metadata, storage, the S3 blueprint.

    ``overrides`` maps dotted setting names to values (tests use it). Start-up
    recovery is not run here: it runs once per server start (``recovery.py``).
    """
    from flask import Flask

    from .config import load_settings
    from .crypto.keys import load_key_ring
    from .crypto.secrets import load_secret_box
    from .metadata.engine import Database, make_engine
    from .metadata.store import MetadataStore
    from .s3.addressing import AddressingMiddleware
    from .console import register as register_console
    from .ops.endpoints import blueprint as ops_blueprint
    from .admin import blueprint as admin_blueprint
    from .ops.metrics import ObservingMiddleware, init_prometheus
    from .s3.dispatch import AnythingConverter, AppState, register_http_errors
    from .s3.dispatch import blueprint as s3_blueprint
    from .service import Services
    from .jobs.schedule import start_background_jobs
    from .storage import make_storage

    settings = settings or load_settings(overrides=overrides)
    configure_logging(settings)

    app = Flask(__name__, static_folder=None)
    app.url_map.merge_slashes = False
    app.url_map.converters["anything"] = AnythingConverter
    app.config["BLEEPSTORE_SETTINGS"] = settings
    db = Database(make_engine(settings))
    keys = load_key_ring(settings)
    services = Services(settings=settings, meta=MetadataStore(db, settings.garbage_grace_seconds),
                        storage=make_storage(settings), keys=keys, secrets=load_secret_box(settings, keys))
    app.extensions["bleepstore"] = AppState(services)
    if _built_by_a_command():
        from .extensions import migrate  # Flask-Migrate imports Alembic: only where `flask db` needs it
        migrate.init_app(app, db=db, directory=MIGRATIONS_DIR)
    app.register_blueprint(ops_blueprint)
    app.register_blueprint(admin_blueprint)
    app.secret_key = services.keys.derive("console session") if services.keys else None
    register_console(app)
    app.register_blueprint(s3_blueprint)
    register_http_errors(app)
    app.extensions["bleepstore_metrics"] = init_prometheus(app, services)
    app.wsgi_app = ObservingMiddleware(AddressingMiddleware(app.wsgi_app, settings.virtual_host_domains),
                                       json_format=settings.log_format == "json")
    start_background_jobs(services)
    return app


def _built_by_a_command() -> bool:
    """True when a `flask ...` command line builds the app (Flask's CLI loads it inside
    its click command). A server's workers are built by gunicorn and leave Alembic,
    Mako and Pygments unimported."""
    import click
    return click.get_current_context(silent=True) is not None


def configure_logging(settings) -> None:
    """Log level and format (text or JSON lines) from the settings, set once."""
    import json

    class JsonFormatter(logging.Formatter):
        def format(self, record):
            entry = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name}
            message = record.getMessage()
            try:
                entry.update(json.loads(message)) if message.startswith("{") else entry.update(message=message)
            except ValueError:
                entry["message"] = message
            if record.exc_info:
                entry["exception"] = self.formatException(record.exc_info)
            return json.dumps(entry)

    # No caller, thread or process lookups per record: the access log writes one
    # record per request and never uses them.
    logging._srcfile = None
    logging.logThreads = logging.logMultiprocessing = False  # gunicorn's own format uses %(process)d
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if settings.log_format == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    logging.getLogger("bleepstore.access").disabled = not settings.access_log
