"""Which lifecycle rules apply to an object, and when (service/lifecycle.py parses them).

Times are microseconds since the epoch, as stored. With the standard day (86400 s)
an age of N days ends at the midnight UTC after ``start + N days``, as S3 rounds it;
with a shorter test day (``lifecycle.day_seconds``) it ends at ``start + N days``
exactly (a rounding to midnight would make a test day meaningless).
"""
from __future__ import annotations

from datetime import datetime, timezone
from email.utils import formatdate

from ..metadata.records import BucketRecord, ObjectRecord
from . import buckets
from .lifecycle import rules_of

DAY = 86400
_US = 1_000_000


def enabled_rules(bucket: BucketRecord) -> list[dict]:
    return [r for r in rules_of(bucket.lifecycle) if r["status"] == "Enabled"]


def matches(rule: dict, key: str, size: int | None, tags: dict | None) -> bool:
    """Whether the rule's filter selects this object version (size None: an upload,
    which only the prefix filters)."""
    f = rule["filter"]
    if not key.startswith(f["prefix"]):
        return False
    if size is not None:
        if f["gt"] is not None and not size > f["gt"]:
            return False
        if f["lt"] is not None and not size < f["lt"]:
            return False
    if f["tags"]:
        tags = tags or {}
        return all(tags.get(k) == v for k, v in f["tags"].items())
    return True


def age_end(start_us: int, days: int, day_seconds: int) -> int:
    """When an age of ``days`` lifecycle days, counted from ``start_us``, is reached."""
    end = start_us + days * day_seconds * _US
    if day_seconds != DAY:
        return end
    day_us = DAY * _US
    return -(-end // day_us) * day_us  # up to the next midnight UTC (unchanged if already one)


def date_us(date: str) -> int:
    parsed = datetime.strptime(date, "%Y-%m-%dT00:00:00Z").replace(tzinfo=timezone.utc)
    return int(parsed.timestamp()) * _US


def expiry(rule: dict, last_modified: int, day_seconds: int) -> int | None:
    """When the rule's current-version Expiration expires a version written then
    (None: the rule has no Days/Date expiration)."""
    expiration = rule.get("expiration") or {}
    if "days" in expiration:
        return age_end(last_modified, expiration["days"], day_seconds)
    if "date" in expiration:
        return date_us(expiration["date"])
    return None


def earliest_expiry(rules: list[dict], record: ObjectRecord, day_seconds: int) -> tuple[int, str] | None:
    """(expiry time, rule id) of the earliest current-version expiration that applies."""
    best = None
    for rule in rules:
        if not matches(rule, record.key, record.size, record.tags):
            continue
        when = expiry(rule, record.last_modified, day_seconds)
        if when is not None and (best is None or when < best[0]):
            best = (when, rule["id"])
    return best


def expiration_header(bucket: BucketRecord, record: ObjectRecord, day_seconds: int = DAY) -> str | None:
    """x-amz-expiration for a response about ``record`` (the current version), as
    S3 writes it: ``expiry-date="Fri, 23 Dec 2012 00:00:00 GMT", rule-id="..."``."""
    if not bucket.lifecycle or record.delete_marker:
        return None
    found = earliest_expiry(enabled_rules(bucket), record, day_seconds)
    if found is None:
        return None
    when, rule_id = found
    return f'expiry-date="{formatdate(when // _US, usegmt=True)}", rule-id="{rule_id}"'


def expiration_headers(svc, record: ObjectRecord) -> dict[str, str]:
    """{"x-amz-expiration": ...} for a PutObject/GetObject/HeadObject answer, or {}.
    (One bucket lookup: reads do not otherwise need the bucket's row.)"""
    if record.delete_marker:
        return {}
    bucket = buckets.lookup(svc, record.bucket)
    value = expiration_header(bucket, record, svc.settings.lifecycle_day_seconds) if bucket else None
    return {"x-amz-expiration": value} if value else {}
