"""Timers that offer each job to the cluster from every gevent worker."""
from __future__ import annotations

import logging
import random

from ..cooperative import gevent_active
from ..service.multipart import reap_expired_uploads
from .lease import run_leased
from .lifecycle import run_lifecycle
from .sweeper import sweep_garbage

log = logging.getLogger("bleepstore.jobs")

REAPER_LEASE = "multipart-reaper"


def start_background_jobs(services) -> None:
    """In a gevent worker: the sweeper, the multipart reaper and the lifecycle
    pass, each on its interval (0 turns it off; the first two also run at
    start-up, in recovery)."""
    if not gevent_active():
        return
    settings = services.settings
    # Each pass takes the lease under a fresh holder id (host, pid, random), made
    # when it runs: correct after a fork, even if the app was built before it.
    _every(settings.sweep_interval_seconds, "sweeping unlinked blobs",
           lambda: sweep_garbage(services.meta, services.storage))
    _every(settings.reap_interval_seconds, "reaping expired multipart uploads",
           lambda: run_leased(services.meta, REAPER_LEASE,
                              lambda _lease: reap_expired_uploads(services, settings.upload_lifetime_seconds)))
    _every(settings.lifecycle_interval_seconds, "running lifecycle rules",
           lambda: run_lifecycle(services, batch=settings.lifecycle_batch_size))


def _every(interval: float, what: str, job) -> None:
    if interval <= 0:
        return
    import gevent

    def loop() -> None:
        while True:
            # Jittered, so the workers of a cluster do not all ask for the lease at once.
            gevent.sleep(interval * random.uniform(0.8, 1.2))
            try:
                job()
            except Exception:  # noqa: BLE001 - logged; the next round tries again
                log.exception("%s failed", what)
    gevent.spawn(loop)
