"""The lifecycle pass: applies every bucket's enabled lifecycle rules, once across a
cluster at a time (the "lifecycle" lease), resuming where a killed holder stopped.

Per bucket with rules, three phases walk its rows in key order, a batch (1000
rows) at a time, each an indexed range scan per rule prefix (service/lifecycle_rules
decides size, tags and age per row):
  current     Expiration (Days/Date) of current versions; ExpiredObjectDeleteMarker
  noncurrent  NoncurrentVersionExpiration (NoncurrentDays, NewerNoncurrentVersions)
  uploads     AbortIncompleteMultipartUpload
Deletions go through the client DELETE path (service.objects.delete_entries ->
metadata delete_many) as the bucket owner, without bypassing governance: a current
version expires into a delete marker in a versioned bucket (as S3), a locked version
is never removed (counted as skipped), and an expiration is conditional on the key's
current version being the one the pass judged (a write since is not expired).

Resume point: after each batch the lease's ``progress`` records (pass time, bucket,
phase, last key, version seq, rank). A successor of a killed holder starts there,
with the same pass time. A batch whose deletions committed just before the kill is
walked again; what it deleted is gone (or is now a delete marker, which Expiration
does not apply to), so nothing is deleted twice.
"""
from __future__ import annotations

import json
import logging

from prometheus_client import Counter

from ..logsafe import text_field
from ..metadata.records import now_us
from ..metadata.versions import DeleteOutcome, VersionChanged
from ..service import Caller, Services
from ..service import multipart
from ..service.lifecycle_rules import age_end, enabled_rules, expiry, matches
from ..service.listing import successor
from ..service.objects import delete_entries
from .. import errors
from .lease import Lease, run_leased

log = logging.getLogger("bleepstore.lifecycle")

LEASE_NAME = "lifecycle"
BATCH = 1000
DELETE_CHUNK = 100  # deletions per transaction: short write transactions
PHASES = ("current", "noncurrent", "uploads")
_NEWEST = 2 ** 63 - 1

DELETED = Counter("bleepstore_lifecycle_deleted_total", "What lifecycle rules removed, by action", ("action",))
SKIPPED = Counter("bleepstore_lifecycle_skipped_total",
                  "Lifecycle deletions not done, by reason (locked: Object Lock; changed: written since)",
                  ("reason",))


def run_lifecycle(svc: Services, holder: str | None = None, now: int | None = None,
                  batch: int = BATCH) -> dict | None:
    """One pass under the cluster's lease: counts per action, or None when another
    process holds the lease. ``now`` (microseconds) is for tests and the benchmark."""
    return run_leased(svc.meta, LEASE_NAME, lambda lease: _Pass(svc, lease, now, batch).run(), holder)


class _LeaseLost(Exception):
    pass


def _ranges(prefixes: list[str]) -> list[tuple[str, str | None]]:
    """Disjoint key ranges, in order, covering every key with one of the prefixes."""
    kept: list[str] = []
    for p in sorted(set(prefixes)):
        if not kept or not p.startswith(kept[-1]):
            kept.append(p)
    return [(p, successor(p)) if p else ("", None) for p in kept]


class _Pass:
    def __init__(self, svc: Services, lease: Lease, now: int | None, batch: int) -> None:
        self.svc, self.meta, self.lease, self.batch = svc, svc.meta, lease, batch
        saved = self.meta.lease_progress(LEASE_NAME)
        self.resume = json.loads(saved) if saved else None
        self.now = self.resume["now"] if self.resume else (now if now is not None else now_us())
        self.day = svc.settings.lifecycle_day_seconds
        self.counts: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def run(self) -> dict:
        start = self.resume["bucket"] if self.resume else ""
        if self.resume:
            log.info("lifecycle: resuming a pass at bucket=%s phase=%s key=%s", start, self.resume["phase"],
                     text_field(self.resume["key"]))
        try:
            while True:
                found = self.meta.lifecycle_buckets(start, 100)
                for record in found:
                    self._bucket(record.name)
                    self.resume = None  # only the first bucket resumes mid-way
                if len(found) < 100:
                    break
                start = found[-1].name + "\0"
            self.meta.set_lease_progress(LEASE_NAME, self.lease.holder, None)
        except _LeaseLost:
            log.warning("lifecycle: lost the lease; its next holder resumes from the recorded progress")
        if self.counts:
            log.info("lifecycle: pass done: %s", ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items())))
        return self.counts

    def _save(self, bucket: str, phase: str, key: str, seq: int = _NEWEST, rank: int = 0,
              upload: str = "") -> None:
        progress = {"now": self.now, "bucket": bucket, "phase": phase, "key": key, "seq": seq, "rank": rank,
                    "upload": upload}
        if not self.lease.renew() or not self.meta.set_lease_progress(
                LEASE_NAME, self.lease.holder, json.dumps(progress)):
            raise _LeaseLost()

    def _bucket(self, name: str) -> None:
        resume = self.resume if self.resume and self.resume["bucket"] == name else None
        first = PHASES.index(resume["phase"]) if resume else 0
        for i, phase in enumerate(PHASES[first:], first):
            getattr(self, "_" + phase)(name, resume if i == first else None)

    def _target(self, name: str):
        """The bucket as it is now (versioning, rules), read again for every batch."""
        record = self.meta.get_bucket(name)
        return record, (enabled_rules(record) if record is not None and record.lifecycle else [])

    def _batch(self, rules: list[dict], after: str, fetch) -> list:
        """Up to one batch of rows after key ``after``, from the key ranges of the
        rules' prefixes in order; ``fetch(low, high, limit)`` reads one range."""
        rows: list = []
        for low, high in _ranges([r["filter"]["prefix"] for r in rules]):
            if high is not None and high <= after:
                continue
            rows += fetch(low, high, self.batch - len(rows))
            if len(rows) >= self.batch:
                break
        return rows

    # -- current versions ------------------------------------------------------------

    def _current(self, name: str, resume: dict | None) -> None:
        after = resume["key"] if resume else ""
        while True:
            record, rules = self._target(name)
            rules = [r for r in rules if "expiration" in r]
            if not rules:
                return
            markers = [r for r in rules if r["expiration"].get("marker")]
            rows = self._batch(rules, after, lambda low, high, limit: self.meta.lifecycle_current(
                name, after, low, high, limit, bool(markers)))
            if not rows:
                return
            todo, expect = [], {}
            for row in rows:
                if row.delete_marker:
                    rule = next((r for r in markers if matches(r, row.key, None, None)), None)
                    if rule is not None and not row.has_noncurrent:
                        todo.append(("expired_delete_marker", rule["id"], row.key, row.version_id))
                        expect[row.key] = row.version_seq
                    continue
                due = [r for r in rules if matches(r, row.key, row.size, row.tags)
                       and (when := expiry(r, row.last_modified, self.day)) is not None and when <= self.now]
                if due:
                    todo.append(("expiration", due[0]["id"], row.key, None))
                    expect[row.key] = row.version_seq
            self._delete(record, todo, expect)
            after = rows[-1].key
            self._save(name, "current", after)

    # -- noncurrent versions ---------------------------------------------------------

    def _noncurrent(self, name: str, resume: dict | None) -> None:
        key, seq, rank = (resume["key"], resume["seq"], resume["rank"]) if resume else ("", _NEWEST, 0)
        while True:
            record, rules = self._target(name)
            rules = [r for r in rules if "noncurrent" in r]
            if not rules:
                return
            rows = self._batch(rules, key, lambda low, high, limit: self.meta.lifecycle_noncurrent(
                name, key, seq, low, high, limit))
            if not rows:
                return
            todo = []
            for row in rows:
                # Noncurrent since its successor (the next newer version) was written.
                since = row.current_seq if row.key != key else seq
                rank = 1 if row.key != key else rank + 1
                for r in rules:
                    nc = r["noncurrent"]
                    if (matches(r, row.key, row.size, row.tags) and age_end(since, nc["days"], self.day) <= self.now
                            and (nc["newer"] is None or rank > nc["newer"])):
                        todo.append(("noncurrent_expiration", r["id"], row.key, row.version_id))
                        break
                key, seq = row.key, row.version_seq
            self._delete(record, todo, None)
            self._save(name, "noncurrent", key, seq, rank)

    # -- incomplete multipart uploads -------------------------------------------------

    def _uploads(self, name: str, resume: dict | None) -> None:
        key, upload = (resume["key"], resume["upload"]) if resume else ("", "")
        while True:
            record, rules = self._target(name)
            rules = [r for r in rules if "abort_days" in r]
            if not rules:
                return
            rows = self._batch(rules, key, lambda low, high, limit: self.meta.lifecycle_uploads(
                name, key, upload, low, high, limit))
            if not rows:
                return
            owner = _owner(record)
            for row_key, upload_id, initiated in rows:
                rule = next((r for r in rules if matches(r, row_key, None, None)
                             and age_end(initiated, r["abort_days"], self.day) <= self.now), None)
                if rule is None:
                    continue
                try:
                    multipart.abort_multipart_upload(self.svc, owner, name, row_key, upload_id)
                except errors.NoSuchUpload:
                    continue  # completed or aborted meanwhile
                self._deleted("abort_incomplete_multipart_upload", rule["id"], name, row_key, upload_id)
            key, upload = rows[-1][0], rows[-1][1]
            self._save(name, "uploads", key, upload=upload)

    # -- deleting ------------------------------------------------------------------------

    def _delete(self, record, todo: list[tuple], expect: dict | None) -> None:
        owner = _owner(record)
        for i in range(0, len(todo), DELETE_CHUNK):
            chunk = todo[i:i + DELETE_CHUNK]
            entries = [(key, version_id) for _, _, key, version_id in chunk]
            outcomes = delete_entries(self.svc, owner, record, entries, False, expect)
            for (action, rule_id, key, version_id), outcome in zip(chunk, outcomes):
                if isinstance(outcome, DeleteOutcome):
                    self._deleted(action, rule_id, record.name, key, outcome.marker_version_id or version_id)
                else:
                    reason = "changed" if isinstance(outcome, VersionChanged) else "locked"
                    SKIPPED.labels(reason).inc()
                    self._count(f"skipped_{reason}")
                    log.info("lifecycle: kept action=%s reason=%s bucket=%s key=%s version_id=%s rule=%s", action,
                             reason, record.name, text_field(key), version_id, text_field(rule_id))

    def _deleted(self, action: str, rule_id: str, bucket: str, key: str, version_id: str | None) -> None:
        DELETED.labels(action).inc()
        self._count(action)
        log.info("lifecycle: deleted action=%s bucket=%s key=%s version_id=%s rule=%s", action, bucket,
                 text_field(key), version_id, text_field(rule_id))


def _owner(record) -> Caller:
    """The pass acts as the bucket's owner (delete markers it makes are the owner's)."""
    return Caller(access_key="", owner_id=record.owner_id, display_name=record.owner_display_name)
