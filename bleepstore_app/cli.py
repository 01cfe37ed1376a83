"""Operator commands: `bleepstore serve`, `bleepstore admin ...` (cli_admin.py), and
`flask db ...` via Flask-Migrate."""
from __future__ import annotations

import os
import sys

import click

from .config import CONFIG_ENV, ConfigError, load_settings


@click.group(help="BleepStore: an S3-compatible object store.\n\n"
                  "Configuration comes from a YAML file (--config or $BLEEPSTORE_CONFIG), "
                  "overridden by BLEEPSTORE_<SECTION>_<KEY> environment variables.")
@click.version_option(package_name="bleepstore")
def main() -> None:
    pass


@main.command(help="Start the server (gunicorn with gevent workers).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar=CONFIG_ENV,
              help="YAML configuration file (default: built-in embedded settings).")
@click.option("--host", help="Address to listen on (server.host).")
@click.option("--port", type=int, help="Port to listen on (server.port, default 9010).")
@click.option("--workers", type=int, help="Number of gevent worker processes (server.workers).")
def serve(config_path: str | None, host: str | None, port: int | None, workers: int | None) -> None:
    env = os.environ.copy()
    if config_path:
        env[CONFIG_ENV] = os.path.abspath(config_path)
    for name, value in (("SERVER_HOST", host), ("SERVER_PORT", port), ("SERVER_WORKERS", workers)):
        if value is not None:
            env[f"BLEEPSTORE_{name}"] = str(value)
    try:
        settings = load_settings(environ=env)
        _check_keys(settings, env)
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    click.echo(f"BleepStore on http://{settings.host}:{settings.port} "
               f"({settings.metadata_engine} metadata, {settings.storage_backend} storage, "
               f"{settings.workers} workers)", err=True)
    sys.stdout.flush()
    # A fresh interpreter, so gevent patches the standard library before any import.
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:bleepstore_app.gunicorn_conf",
            "bleepstore_app:create_app()"]
    os.execve(sys.executable, argv, env)


def _check_keys(settings, env) -> None:
    """Read the encryption keys once before the workers start: a bad key source is
    one line here, not a traceback per worker (and an embedded server's own key
    file is made once)."""
    from .crypto.keys import load_key_ring
    from .crypto.secrets import load_secret_box
    load_secret_box(settings, load_key_ring(settings, environ=env), environ=env)


@main.group(help="Server-side encryption keys.")
def encryption() -> None:
    pass


@encryption.command(help="Re-wrap every stored SSE-S3 (and managed SSE-KMS) data key under "
                         "encryption.active_master_key, and re-seal stored secret keys under the "
                         "current credential key. Metadata only: no object is rewritten. After "
                         "adding a new master key and making it active, run this; when it reports "
                         "nothing left, the old key can be removed from the configuration.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar=CONFIG_ENV,
              help="YAML configuration file (default: built-in embedded settings).")
def rewrap(config_path: str | None) -> None:
    from .crypto.keys import KeyRingError, load_key_ring
    from .errors import S3Error
    from .metadata.engine import Database, make_engine
    from .metadata.store import MetadataStore
    from .service import Services
    from .service.encryption import rewrap_data_keys

    from .crypto.secrets import load_secret_box
    from .service.credentials import seal_all

    try:
        settings = load_settings(config_path)
        keys = load_key_ring(settings)
        box = load_secret_box(settings, keys)
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    db = Database(make_engine(settings))
    try:
        svc = Services(settings=settings, meta=MetadataStore(db), storage=None, keys=keys, secrets=box)
        total = 0
        for attempt in range(1, 6):  # until a pass finds nothing (rows that changed meanwhile)
            counts = rewrap_data_keys(svc)
            click.echo(f"pass {attempt}: re-wrapped " + ", ".join(f"{n} in {t}" for t, n in counts.items()))
            total += sum(counts.values())
            if not any(counts.values()):
                break
        click.echo(f"done: {total} data keys now under master key {keys.active!r}")
        # Stored secret keys derive their key from the active master key (unless
        # auth.secret_encryption_key is set): re-seal them too, as a start does.
        sealed, left = seal_all(svc)
        click.echo(f"credential secrets: {sealed} re-sealed under {box.current!r}"
                   + (f", {left} under a key not configured here" if left else ""))
    except (S3Error, KeyRingError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        db.dispose()


from .cli_admin import admin  # noqa: E402  (`bleepstore admin ...`)

main.add_command(admin)


if __name__ == "__main__":
    main()
