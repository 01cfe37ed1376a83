"""Alembic environment for BleepStore.

The engine comes from the caller: start-up recovery passes it in
``config.attributes["engine"]``; ``flask db`` takes it from the app. Migrations
run under a lock, so two servers (or a server and ``flask db upgrade``) starting
together never apply anything twice: a transaction-scoped advisory lock on
PostgreSQL, an flock next to the database file on SQLite.
"""
from __future__ import annotations

import fcntl
import logging
from contextlib import contextmanager
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text

from bleepstore_app.metadata.tables import metadata

config = context.config
if config.config_file_name is not None and not config.attributes.get("engine"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
log = logging.getLogger("alembic.env")

MIGRATION_LOCK_ID = 0x626C6565  # "blee"


def _engine():
    engine = config.attributes.get("engine")
    if engine is None:
        from flask import current_app
        engine = current_app.extensions["migrate"].db.engine
    return engine


@contextmanager
def _sqlite_file_lock(engine):
    path = engine.url.database
    if not path or path == ":memory:":
        yield
        return
    with open(path + ".migrate-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_migrations_offline() -> None:
    context.configure(url=str(_engine().url), target_metadata=metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = _engine()
    is_sqlite = engine.dialect.name == "sqlite"
    lock = _sqlite_file_lock(engine) if is_sqlite else contextmanager(lambda: (yield))()
    with lock, engine.connect() as connection:
        if is_sqlite:
            # A batch migration rebuilds a table (copy, DROP, rename); with foreign keys
            # on, the DROP would cascade into the tables that reference it (dropping
            # every object with the buckets table). The pragma only takes effect
            # outside a transaction; the rows are checked once the schema is changed.
            connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")  # not in a BEGIN
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                          compare_type=True)
        with context.begin_transaction():
            if engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            context.run_migrations()
        if is_sqlite:
            raw = connection.connection.dbapi_connection
            broken = raw.execute("PRAGMA foreign_key_check").fetchall()
            raw.execute("PRAGMA foreign_keys=ON")
            if broken:
                raise RuntimeError(f"the migrated database breaks {len(broken)} foreign keys: {broken[:5]}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
