"""Queries for bucket lifecycle (a mixin of MetadataStore): storing the rules, and
the batched, indexed walks the lifecycle pass (jobs/lifecycle.py) makes.

Each walk is keyset pagination in primary-key order within one key range (a rule
prefix's range, or the whole bucket), so a batch is one index range scan and the
pass never holds more than a batch of rows.
"""
from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import and_, bindparam, exists, false, literal, or_, select, update

from . import tables as t
from .engine import Prepared
from .records import BucketRecord, loads

b, o, ov, up = t.buckets.c, t.objects.c, t.object_versions.c, t.multipart_uploads.c


class CurrentRow(NamedTuple):
    """A key's current version as the pass sees it."""
    key: str
    version_id: str
    version_seq: int
    delete_marker: bool
    size: int
    last_modified: int
    tags: dict
    has_noncurrent: bool  # only asked for when a rule needs it (ExpiredObjectDeleteMarker)


class NoncurrentRow(NamedTuple):
    key: str
    version_id: str
    version_seq: int
    delete_marker: bool
    size: int
    tags: dict
    current_seq: int  # the key's current version (the successor of its newest noncurrent one)


Q_SET_LIFECYCLE = Prepared(update(t.buckets).where(b.name == bindparam("bucket"))
                           .values(lifecycle=bindparam("lifecycle")))
Q_LIFECYCLE_BUCKETS = Prepared(select(*t.buckets.c).where(b.lifecycle.is_not(None), b.name >= bindparam("after"))
                               .order_by(b.name).limit(bindparam("limit")))


def _range(c, high: bool):
    return [c.key >= bindparam("low"), *([c.key < bindparam("high")] if high else [])]


def _current(high: bool, with_noncurrent: bool) -> Prepared:
    has = (exists().where(ov.bucket == o.bucket, ov.key == o.key) if with_noncurrent else false())
    return Prepared(select(o.key, o.version_id, o.version_seq, o.delete_marker, o.size, o.last_modified, o.tags,
                           has.label("has_noncurrent") if with_noncurrent else literal(False))
                    .where(o.bucket == bindparam("bucket"), o.key > bindparam("after"), *_range(o, high))
                    .order_by(o.key).limit(bindparam("limit")))


def _noncurrent(high: bool) -> Prepared:
    after = and_(ov.key >= bindparam("after"), or_(ov.key > bindparam("after"), ov.version_seq < bindparam("seq")))
    return Prepared(select(ov.key, ov.version_id, ov.version_seq, ov.delete_marker, ov.size, ov.tags, o.version_seq)
                    .join(t.objects, and_(o.bucket == ov.bucket, o.key == ov.key))
                    .where(ov.bucket == bindparam("bucket"), after, *_range(ov, high))
                    .order_by(ov.key, ov.version_seq.desc()).limit(bindparam("limit")))


def _uploads(high: bool) -> Prepared:
    after = and_(up.key >= bindparam("after"), or_(up.key > bindparam("after"), up.upload_id > bindparam("upload")))
    return Prepared(select(up.key, up.upload_id, up.initiated_at)
                    .where(up.bucket == bindparam("bucket"), up.state == "open", after, *_range(up, high))
                    .order_by(up.key, up.upload_id).limit(bindparam("limit")))


Q_CURRENT = {(h, n): _current(h, n) for h in (False, True) for n in (False, True)}
Q_NONCURRENT = {h: _noncurrent(h) for h in (False, True)}
Q_UPLOADS = {h: _uploads(h) for h in (False, True)}


def _bounds(low: str, high: str | None) -> dict:
    return {"low": low, **({"high": high} if high is not None else {})}


class LifecycleQueries:
    """Mixed into MetadataStore (needs ``self.db``)."""

    def set_bucket_lifecycle(self, name: str, config: str | None) -> None:
        """Store (JSON, service/lifecycle.py) or clear (None) the bucket's lifecycle rules."""
        self.db.write(lambda cur: cur.run(Q_SET_LIFECYCLE, bucket=name, lifecycle=config))

    def lifecycle_buckets(self, after: str, limit: int) -> list[BucketRecord]:
        """Buckets with lifecycle rules, from ``after`` (inclusive) in name order."""
        rows = self.db.read(lambda cur: cur.all(Q_LIFECYCLE_BUCKETS, after=after, limit=limit))
        return [BucketRecord(*r) for r in rows]

    def lifecycle_current(self, bucket: str, after: str, low: str, high: str | None, limit: int,
                          with_noncurrent: bool) -> list[CurrentRow]:
        """Current versions with low <= key < high and key > after, in key order."""
        q = Q_CURRENT[(high is not None, with_noncurrent)]
        rows = self.db.read(lambda cur: cur.all(q, bucket=bucket, after=after, limit=limit, **_bounds(low, high)))
        return [CurrentRow(r[0], r[1], r[2], bool(r[3]), r[4], r[5], loads(r[6]), bool(r[7])) for r in rows]

    def lifecycle_noncurrent(self, bucket: str, after: str, seq: int, low: str, high: str | None,
                             limit: int) -> list[NoncurrentRow]:
        """Noncurrent versions after (key ``after``, version_seq ``seq``) in (key, newest
        first) order, with low <= key < high, each with its key's current version_seq."""
        q = Q_NONCURRENT[high is not None]
        rows = self.db.read_snapshot(lambda cur: cur.all(q, bucket=bucket, after=after, seq=seq, limit=limit,
                                                         **_bounds(low, high)))
        return [NoncurrentRow(r[0], r[1], r[2], bool(r[3]), r[4], loads(r[5]), r[6]) for r in rows]

    def lifecycle_uploads(self, bucket: str, after: str, upload: str, low: str, high: str | None,
                          limit: int) -> list[tuple[str, str, int]]:
        """(key, upload id, initiated_at) of uploads after (after, upload), low <= key < high."""
        q = Q_UPLOADS[high is not None]
        return self.db.read(lambda cur: cur.all(q, bucket=bucket, after=after, upload=upload, limit=limit,
                                                **_bounds(low, high)))
