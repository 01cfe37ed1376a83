"""The start-up sequence. There is no clean shutdown: every start is a recovery.

Runs once per server start (gunicorn's master, before workers fork), and is safe
when several servers start at once against one database and data directory:

1. migrate the schema (under a lock), or refuse to start if it is behind;
2. seed the configured credentials (upserts, secrets sealed), then seal every
   stored secret still in clear or under an older key (one row per statement);
3. remove temp files of writes that died with their process;
4. abort multipart uploads older than their lifetime;
5. delete the unlinked blobs whose grace period has passed (the sweeper);
6. remove blobs that no metadata row or garbage record points at (orphans of a
   crash between a blob's rename and its metadata commit).

The workers go on reaping and sweeping on their timers (``jobs/``), one node of a
cluster at a time: the state lives in the database, so there is no in-memory
queue to lose.
"""
from __future__ import annotations

import logging
import time

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from . import MIGRATIONS_DIR
from .config import Settings
from .metadata.engine import Database, make_engine
from .crypto.keys import load_key_ring
from .crypto.secrets import load_secret_box
from .metadata.store import MetadataStore
from .service import Services
from .jobs.sweeper import sweep_garbage
from .service.credentials import seal_all, seed_configured
from .service.multipart import reap_expired_uploads
from .storage import make_storage
from .storage.base import StorageError

log = logging.getLogger("bleepstore.recovery")

SWEEP_BATCH = 500


class SchemaBehind(RuntimeError):
    """The database schema is older than this code and migrations are off."""


def alembic_config(engine) -> AlembicConfig:
    cfg = AlembicConfig(f"{MIGRATIONS_DIR}/alembic.ini")
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine) -> None:
    command.upgrade(alembic_config(engine), "head")


def check_schema(engine) -> None:
    heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current != heads:
        raise SchemaBehind(
            f"database schema is at {', '.join(sorted(current)) or 'nothing'}, this code needs "
            f"{', '.join(sorted(heads))}: run `flask db upgrade` (FLASK_APP=bleepstore_app)")


def recover(settings: Settings) -> None:
    """Run the whole start-up sequence."""
    started = time.monotonic()
    db = Database(make_engine(settings))
    try:
        if settings.migrate_on_start:
            migrate(db.engine)
        else:
            check_schema(db.engine)
        meta = MetadataStore(db, settings.garbage_grace_seconds)
        keys = load_key_ring(settings)
        storage = make_storage(settings)
        services = Services(settings=settings, meta=meta, storage=storage, keys=keys,
                            secrets=load_secret_box(settings, keys))
        seed_configured(services)
        sealed, unreadable = seal_all(services)
        if sealed or unreadable:
            log.info("credential secrets: %d sealed under key %r, %d under a key not configured here",
                     sealed, services.secrets.current, unreadable)
        reaped = reap_expired_uploads(services, settings.upload_lifetime_seconds)
        swept = removed = 0
        try:
            storage.recover()
            swept = sweep_garbage(meta, storage) or 0
            removed = sweep_orphans(meta, storage, settings.orphan_min_age_seconds)
        except StorageError as exc:
            # A cloud backend that cannot be reached must not stop the server:
            # /readyz reports it, and the next start sweeps what this one could not.
            log.warning("storage recovery skipped: the %s backend failed: %s", storage.name, exc)
    finally:
        db.dispose()
    log.info("recovery done in %.2fs (%d expired uploads reaped, %d unlinked and %d orphan blobs removed)",
             time.monotonic() - started, reaped, swept, removed)


def sweep_orphans(meta: MetadataStore, storage, min_age: float) -> int:
    """Delete blobs older than ``min_age`` that no row points at; returns the count."""
    removed = 0
    batch: list[str] = []

    def flush() -> int:
        used = meta.locations_in_use(batch)
        for location in batch:
            if location not in used:
                storage.delete(location)
        count = len(batch) - len(used)
        batch.clear()
        return count

    for location in storage.iter_locations(min_age):
        batch.append(location)
        if len(batch) >= SWEEP_BATCH:
            removed += flush()
    if batch:
        removed += flush()
    return removed
