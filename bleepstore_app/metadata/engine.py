"""Database engines and short transactions that behave under gevent.

SQLite is C and never yields to gevent: its busy handler would sleep inside C and
freeze every greenlet of the worker. So the busy timeout is a few milliseconds, a
worker serialises its own writers with a (gevent-aware, once patched) lock, and a
writer that still meets SQLITE_BUSY (another worker holds the lock) retries after a
cooperative ``time.sleep``. Writes start with BEGIN IMMEDIATE so a transaction
never fails half-way when it upgrades from reading to writing.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from ..config import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 5
WRITE_RETRY_SECONDS = 30.0


def make_engine(settings: Settings) -> Engine:
    """Create the engine for the configured metadata database."""
    if settings.metadata_engine == "sqlite":
        return _sqlite_engine(settings.database_url, settings.sqlite_synchronous)
    return create_engine(
        settings.database_url,
        pool_size=settings.postgresql_pool_size,
        max_overflow=settings.postgresql_max_overflow,
        pool_pre_ping=True,
        pool_recycle=3600,
    )


def _sqlite_engine(url: str, synchronous: str) -> Engine:
    from pathlib import Path
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False},
                           pool_size=20, max_overflow=100)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")

    return engine


def _is_busy(exc: OperationalError) -> bool:
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return "locked" in text or "busy" in text


class Database:
    """An engine plus the two ways the rest of the code touches it: read / write."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._write_lock = threading.Lock() if self.is_sqlite else None

    def read(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a read transaction (retried while SQLite is busy)."""
        return self._run(work, write=False)

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction; retried whole on SQLITE_BUSY."""
        if self._write_lock is None:
            return self._run(work, write=True)
        with self._write_lock:
            return self._run(work, write=True)

    def _run(self, work: Callable[[Connection], T], write: bool) -> T:
        deadline = time.monotonic() + WRITE_RETRY_SECONDS
        delay = 0.001
        while True:
            try:
                with self.engine.connect() as conn:
                    conn.info["write"] = write
                    with conn.begin():
                        return work(conn)
            except OperationalError as exc:
                if not (self.is_sqlite and _is_busy(exc)) or time.monotonic() > deadline:
                    raise
            time.sleep(delay)  # cooperative under gevent
            delay = min(delay * 2, 0.05)

    def dispose(self) -> None:
        self.engine.dispose()
