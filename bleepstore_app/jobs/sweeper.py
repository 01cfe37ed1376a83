"""The blob sweeper: deletes blobs that committed writes unlinked, once their
grace period (``storage.garbage_grace_seconds``) has passed.

Crash-safe by order: a blob is deleted first and its garbage record forgotten
after, so a sweep killed in between deletes it again next time (deleting a
missing blob is not an error).
"""
from __future__ import annotations

import logging

from ..metadata.records import now_us
from ..storage.base import StorageError
from .lease import Lease, run_leased

log = logging.getLogger("bleepstore.jobs")

LEASE_NAME = "blob-sweeper"
BATCH = 500


def sweep_garbage(meta, storage, holder: str | None = None) -> int | None:
    """One sweep under the cluster's lease: the number of blobs deleted, or None
    when another process is sweeping."""
    return run_leased(meta, LEASE_NAME, lambda lease: _sweep(meta, storage, lease), holder)


def _sweep(meta, storage, lease: Lease) -> int:
    deleted = 0
    while True:
        due = meta.due_garbage(now_us(), BATCH)
        done = []
        for garbage_id, location in due:
            try:
                storage.delete(location)
            except StorageError as exc:  # the backend is failing: the next sweep retries
                log.warning("sweeper: could not delete blob %s: %s", location, exc)
                break
            done.append(garbage_id)
        if done:
            meta.forget_garbage(done)
            deleted += len(done)
        if len(done) < BATCH or not lease.renew():
            if deleted:
                log.info("sweeper: deleted %d unlinked blobs", deleted)
            return deleted
