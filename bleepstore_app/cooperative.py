"""Blocking calls under gevent.

A gevent worker runs many requests on one OS thread; a C call that blocks (fsync,
an SQLite COMMIT that fsyncs) freezes all of them. ``offload`` runs such a call in
gevent's native thread pool when the standard library is patched, and directly
otherwise (CLI, tests). The offloaded function must not touch gevent objects
(locks, sockets): it runs on another OS thread.
"""
from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")


def gevent_active() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return monkey.is_module_patched("os")


def native_thread_pool():
    """gevent's native thread pool when the standard library is patched, else None
    (call ``fn`` directly). Its ``spawn(fn, *args)`` answers an AsyncResult."""
    if gevent_active():
        import gevent
        return gevent.get_hub().threadpool
    return None


def offload(fn: Callable[..., T], *args) -> T:
    """Call ``fn(*args)`` without blocking the gevent hub. Its exception is raised
    here, in the caller (gevent's threadpool would also print every one to stderr,
    which for an expected "database is locked" retry is only noise)."""
    pool = native_thread_pool()
    if pool is None:
        return fn(*args)
    result, error = pool.apply(_capture, (fn, args))
    if error is not None:
        raise error
    return result


def _capture(fn: Callable[..., T], args: tuple) -> tuple[T | None, BaseException | None]:
    try:
        return fn(*args), None
    except Exception as exc:  # re-raised by offload() in the calling greenlet
        return None, exc
