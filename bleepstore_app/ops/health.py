"""Health probes: /healthz (alive), /readyz (can serve), /health (details).

A worker exists only after start-up recovery has finished (it runs in the
gunicorn master before any worker forks), so readiness is: the metadata
database answers a query and the storage backend is usable.
"""
from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def check_components(services) -> dict[str, dict]:
    """Each component's status and how long its check took."""
    results = {}
    for name, probe in (("metadata", services.meta.ping), ("storage", services.storage.check)):
        started = time.perf_counter()
        try:
            probe()
            status, error = "ok", None
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            log.warning("readiness: %s unavailable: %s", name, exc)
            status, error = "unavailable", f"{type(exc).__name__}: {exc}"[:300]
        entry = {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 3)}
        if error:
            entry["error"] = error
        results[name] = entry
    return results
