"""Run a function only while holding a named lease in the database."""
from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Callable

from ..metadata.records import now_us

log = logging.getLogger("bleepstore.jobs")

LEASE_SECONDS = 120  # a holder that stops renewing loses the lease after this


def holder_id() -> str:
    """Who holds a lease: host and process, and a random part (pids repeat)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """A lease held by this process, renewed by the job between batches."""

    def __init__(self, meta, name: str, holder: str) -> None:
        self.meta, self.name, self.holder = meta, name, holder

    def renew(self) -> bool:
        """Extend the lease; False when it was lost (expired and taken by another)."""
        return self.meta.take_lease(self.name, self.holder, now_us(), LEASE_SECONDS * 1_000_000)


def run_leased(meta, name: str, work: Callable[[Lease], int], holder: str | None = None) -> int | None:
    """``work(lease)`` if this process can take the lease ``name`` now; returns its
    result, or None when another process holds the lease."""
    lease = Lease(meta, name, holder or holder_id())
    if not lease.renew():
        return None
    try:
        return work(lease)
    finally:
        try:
            meta.drop_lease(name, lease.holder)
        except Exception:  # noqa: BLE001 - it expires by itself
            log.warning("could not release the %s lease; it expires in %ss", name, LEASE_SECONDS)
