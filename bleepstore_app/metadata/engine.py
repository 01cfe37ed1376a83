"""Database engines and short transactions that behave under gevent.

Statements are SQLAlchemy Core, compiled once per dialect (``Prepared``) and run
on the pooled DBAPI connection: a hot read is one pool checkout and one
``execute``, with no per-call statement building, cache-key hashing or result
wrapping.

SQLite is C and never yields to gevent: its busy handler would sleep inside C and
freeze every greenlet of the worker. So the busy timeout is a few milliseconds, and
a writer that meets SQLITE_BUSY (another worker holds the lock) retries after a
cooperative ``time.sleep``.

Reads run in autocommit mode on both engines, on connections the worker keeps
checked out between reads: no pool checkout (and on PostgreSQL no pre-ping and no
COMMIT round trip) per read. Greenlets never run at once, so a plain list is
their free list. A kept PostgreSQL connection the server dropped is noticed by
the read that fails on it, which runs once more on a fresh connection. Reads
whose statements must agree (an object row and its part map) run in one read
transaction instead (``read_snapshot``), never as two autocommit reads.

Writes on SQLite are group-committed: a durable commit costs one fsync (about 4 ms
on this class of disk), which would cap a worker at ~250 writes/s. Writers queue
their work; whoever holds the write lock runs every queued work in one BEGIN
IMMEDIATE transaction, each inside its own SAVEPOINT (so one failing work does
not undo the others), and commits once. Nobody is answered before the commit.
The workers of one server take turns through an flock on ``<database>-writer``
before BEGIN IMMEDIATE: the kernel hands it over the moment the previous commit
ends, where SQLite's busy handler would poll and sleep (measured: 1 KiB DELETE at
16 connections about 1,100 -> 1,500/s, no busy retries left).
"""
from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from ..config import Settings
from ..cooperative import offload
from .records import MetadataUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 5
BUSY_RETRY_SECONDS = 30.0

_databases: weakref.WeakSet[Database] = weakref.WeakSet()
_inherited_readers: list = []  # the parent's connections, held so that a child never resets or closes them


def _forget_idle_readers_after_fork() -> None:
    for db in _databases:  # a forked child must not use its parent's connections
        _inherited_readers.extend(db._idle_readers)
        db._idle_readers.clear()


os.register_at_fork(after_in_child=_forget_idle_readers_after_fork)


def make_engine(settings: Settings) -> Engine:
    """Create the engine for the configured metadata database."""
    if settings.metadata_engine == "sqlite":
        return _sqlite_engine(settings.database_url, settings.sqlite_synchronous)
    # pool_size is the worker's budget of idle connections: half stay in the pool
    # (writes), as many again are kept open by Database for reads.
    pooled = max(1, (settings.postgresql_pool_size + 1) // 2)
    return create_engine(
        settings.database_url,
        pool_size=pooled,
        max_overflow=settings.postgresql_max_overflow + settings.postgresql_pool_size - pooled,
        pool_pre_ping=True,
        pool_recycle=3600,
    )


def _sqlite_engine(url: str, synchronous: str) -> Engine:
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False}, pool_size=20, max_overflow=100)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # autocommit; write transactions BEGIN explicitly
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # SQLAlchemy Connections (migrations, tools)
        conn.exec_driver_sql("BEGIN")

    return engine


def dialect_insert(dialect: str, table):
    """The INSERT of the dialect named ``dialect`` ("sqlite", "postgresql"), for its
    ON CONFLICT forms. The dialect's module is imported on first use: a SQLite server
    never loads the PostgreSQL dialect (nor asyncio, which its asyncpg part imports)."""
    from importlib import import_module
    return import_module(f"sqlalchemy.dialects.{dialect}").insert(table)


class Prepared:
    """A Core statement compiled once per dialect, with named parameters.

    ``build`` is a statement, or a function of the dialect name returning one (for
    dialect-specific forms such as INSERT ... ON CONFLICT).
    """

    def __init__(self, build) -> None:
        self._build = build
        self._compiled: dict[str, tuple[str, Callable[[dict], Any]]] = {}

    def compiled(self, dialect) -> tuple[str, Callable[[dict], Any]]:
        found = self._compiled.get(dialect.name)
        if found is None:
            stmt = self._build(dialect.name) if callable(self._build) else self._build
            c = stmt.compile(dialect=dialect)
            defaults = dict(c.params)
            if c.positional:
                order = tuple(c.positiontup)
                convert = lambda p, o=order, d=defaults: tuple(p[k] if k in p else d[k] for k in o)  # noqa: E731
            else:
                convert = lambda p, d=defaults: {**d, **p}  # noqa: E731
            found = self._compiled[dialect.name] = (c.string, convert)
        return found


class Cursor:
    """Runs Prepared statements on one DBAPI connection."""

    __slots__ = ("_cur", "_dialect")

    def __init__(self, cur, dialect) -> None:
        self._cur, self._dialect = cur, dialect

    def _execute(self, q: Prepared, params: dict) -> None:
        sql, convert = q.compiled(self._dialect)
        self._cur.execute(sql, convert(params))

    def one(self, q: Prepared, **params) -> tuple | None:
        self._execute(q, params)
        return self._cur.fetchone()

    def all(self, q: Prepared, **params) -> list[tuple]:
        self._execute(q, params)
        return self._cur.fetchall()

    def run(self, q: Prepared, **params) -> int:
        self._execute(q, params)
        return self._cur.rowcount

    def many(self, q: Prepared, rows: list[dict]) -> None:
        """One statement run for each of ``rows`` (a batch insert)."""
        if rows:
            sql, convert = q.compiled(self._dialect)
            self._cur.executemany(sql, [convert(r) for r in rows])

    def plain(self, sql: str) -> None:
        """A fixed SQL text: transaction control on a reader connection."""
        self._cur.execute(sql)


class _ReaderDropped(Exception):
    """A kept reader connection was dropped by the server (the cause says how)."""


class _PendingWrite:
    __slots__ = ("work", "done", "result", "error")

    def __init__(self, work) -> None:
        self.work = work
        self.done = False
        self.result = None
        self.error: BaseException | None = None


class Database:
    """An engine plus the two ways the rest of the code touches it: read / write."""

    MAX_GROUP = 64
    MAX_IDLE_READERS = 32  # SQLite; on PostgreSQL as many as the pool keeps (make_engine)

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._write_lock = threading.Lock()
        self._pending: list[_PendingWrite] = []
        dbapi = engine.dialect.loaded_dbapi
        self.IntegrityError = dbapi.IntegrityError
        self._OperationalError = dbapi.OperationalError
        database = engine.url.database
        self._writer_lock_path = database + "-writer" if self.is_sqlite and database and database != ":memory:" \
            else None
        self._writer_lock: tuple[int, int] | None = None  # (pid, fd): opened once per process
        self._idle_readers: list = []  # reader connections checked out of the pool, free for a read
        self._max_idle_readers = self.MAX_IDLE_READERS if self.is_sqlite else engine.pool.size()
        _databases.add(self)

    def read(self, work: Callable[[Cursor], T]) -> T:
        """Run ``work`` in autocommit mode on a kept reader connection."""
        if self.is_sqlite:
            return self._retry_busy(lambda: self._read_on_reader(work))
        try:
            try:
                return self._read_on_reader(work)
            except _ReaderDropped:
                # The server dropped the kept connections (a restart, a failover): the
                # others are as dead as this one. Once more on a fresh, pinged one.
                self._drop_idle_readers()
            try:
                return self._read_on_reader(work)
            except _ReaderDropped as dropped:
                raise dropped.__cause__ from None
        except Exception as exc:
            self._raise_if_unavailable(exc)
            raise

    def read_snapshot(self, work: Callable[[Cursor], T]) -> T:
        """Like ``read``, but every statement of ``work`` sees the same committed
        state: one read transaction (SQLite WAL keeps its snapshot from the first
        SELECT; PostgreSQL needs REPEATABLE READ for that). For reads whose parts
        must agree, such as an object row and its part map."""
        begin = "BEGIN" if self.is_sqlite else "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"

        def in_transaction(cur: Cursor) -> T:
            cur.plain(begin)
            try:
                result = work(cur)
            except BaseException:
                try:
                    cur.plain("ROLLBACK")
                except Exception:  # noqa: BLE001 - the original error says more
                    pass
                raise
            cur.plain("COMMIT")
            return result
        return self.read(in_transaction)

    def _read_on_reader(self, work: Callable[[Cursor], T]) -> T:
        idle = self._idle_readers
        if idle:
            raw = idle.pop()
        else:
            raw = self.engine.raw_connection()
            if not self.is_sqlite:
                # No transaction around a read: no COMMIT round trip, and no
                # connection left idle in transaction between statements.
                raw.dbapi_connection.autocommit = True
        try:
            cur = raw.cursor()
            try:
                result = work(Cursor(cur, self.dialect))
            finally:
                cur.close()
        except BaseException as exc:
            if self._return_reader(raw, exc):
                raise _ReaderDropped() from exc
            raise
        if len(idle) < self._max_idle_readers:
            idle.append(raw)
        else:
            self._return_reader(raw)
        return result

    def _return_reader(self, raw, exc: BaseException | None = None) -> bool:
        """Back to the pool (which resets it), as a transactional connection again;
        or invalidated, when the error says the server dropped it (answers True)."""
        if exc is not None and isinstance(exc, self._OperationalError) \
                and self.dialect.is_disconnect(exc, raw.dbapi_connection, None):
            raw.invalidate()
            return True
        try:
            if not self.is_sqlite:
                raw.dbapi_connection.autocommit = False
            raw.close()
        except Exception:  # noqa: BLE001 - a connection in an unknown state is not reused
            raw.invalidate()
        return False

    def _raise_if_unavailable(self, exc: Exception) -> None:
        """MetadataUnavailable when ``exc`` says PostgreSQL could not serve (a
        connect that failed comes wrapped by SQLAlchemy's pool)."""
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        if isinstance(cause, self._OperationalError):
            raise MetadataUnavailable(str(cause).strip()) from exc

    def _drop_idle_readers(self) -> None:
        while self._idle_readers:
            raw = self._idle_readers.pop()
            try:
                raw.invalidate()
            except Exception:  # noqa: BLE001
                pass

    def write(self, work: Callable[[Cursor], T]) -> T:
        """Run ``work`` in a committed write transaction and return its result.

        ``work`` touches only the database (it may run inside another writer's
        group commit), and its exceptions propagate to this caller alone.
        """
        if not self.is_sqlite:
            try:
                return self._write_once(work)
            except Exception as exc:
                self._raise_if_unavailable(exc)
                raise
        slot = _PendingWrite(work)
        self._pending.append(slot)
        with self._write_lock:
            if not slot.done:
                self._retry_busy(self._commit_group)
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _commit_group(self) -> None:
        raw = self.engine.raw_connection()
        try:
            # In a native thread: the COMMIT's fsync must not stall the hub, and the
            # requests that arrive meanwhile join the next group.
            offload(self._run_group, raw)
        finally:
            raw.close()

    def _run_group(self, raw) -> None:
        lock = self._writer_lock_fd()
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # in a native thread: blocking here stalls no greenlet
        try:
            self._run_group_locked(raw)
        finally:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _run_group_locked(self, raw) -> None:
        cur = raw.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")  # may raise busy: nothing taken from the queue yet
            group = self._pending[: self.MAX_GROUP]
            del self._pending[: len(group)]
            try:
                if len(group) == 1:  # alone: the transaction is its own, no savepoint needed
                    self._run_alone(cur, group[0])
                else:
                    for slot in group:
                        cur.execute("SAVEPOINT w")
                        try:
                            slot.result = slot.work(Cursor(cur, self.dialect))
                        except Exception as exc:  # handed to that writer, the others go on
                            cur.execute("ROLLBACK TO w")
                            slot.error = exc
                        cur.execute("RELEASE w")
                    cur.execute("COMMIT")
            except BaseException as exc:
                raw.rollback()
                for slot in group:
                    slot.error = slot.error or exc
                raise
            finally:
                for slot in group:
                    slot.done = True
        finally:
            cur.close()

    def _run_alone(self, cur, slot: _PendingWrite) -> None:
        try:
            slot.result = slot.work(Cursor(cur, self.dialect))
        except Exception as exc:  # handed to that writer
            cur.execute("ROLLBACK")
            slot.error = exc
            return
        cur.execute("COMMIT")

    def _writer_lock_fd(self) -> int | None:
        if self._writer_lock_path is None:
            return None
        if self._writer_lock is None or self._writer_lock[0] != os.getpid():
            self._writer_lock = (os.getpid(), os.open(self._writer_lock_path, os.O_RDWR | os.O_CREAT, 0o644))
        return self._writer_lock[1]

    def _write_once(self, work: Callable[[Cursor], T]) -> T:
        """One transaction on a pooled connection (PostgreSQL's writes)."""
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            try:
                result = work(Cursor(cur, self.dialect))
                raw.commit()
                return result
            except BaseException:
                raw.rollback()
                raise
            finally:
                cur.close()
        finally:
            raw.close()  # back to the pool

    def _retry_busy(self, attempt: Callable[[], T]) -> T:
        deadline = time.monotonic() + BUSY_RETRY_SECONDS
        delay = 0.0005
        while True:
            try:
                return attempt()
            except self._OperationalError as exc:
                text = str(exc).lower()
                if not (self.is_sqlite and ("locked" in text or "busy" in text)) or time.monotonic() > deadline:
                    raise
            time.sleep(delay)  # cooperative under gevent; more writers queue meanwhile
            delay = min(delay * 2, 0.01)

    def dispose(self) -> None:
        while self._idle_readers:
            self._return_reader(self._idle_readers.pop())
        if self._writer_lock is not None and self._writer_lock[0] == os.getpid():
            os.close(self._writer_lock[1])
        self._writer_lock = None
        self.engine.dispose()
