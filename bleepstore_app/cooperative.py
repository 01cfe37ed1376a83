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


def offload(fn: Callable[..., T], *args) -> T:
    """Call ``fn(*args)`` without blocking the gevent hub."""
    if gevent_active():
        import gevent
        return gevent.get_hub().threadpool.apply(fn, args)
    return fn(*args)
