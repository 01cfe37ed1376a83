"""Queries over object versions (a mixin of MetadataStore).

``objects`` holds each key's current version and ``object_versions`` its
noncurrent ones, with the same columns. A write in a versioned bucket moves the
current row into ``object_versions`` and puts the new one in its place, under
the current row's lock (FOR UPDATE on PostgreSQL; SQLite serialises writers),
so writers on one key from any node see one order. Deleting the current version
promotes the newest noncurrent one. Part rows are keyed by version id, so a
version moves between the two tables without touching them.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from sqlalchemy import and_, bindparam, delete, false, or_, select, true, union_all, update

from . import tables as t
from .engine import Cursor, Prepared
from .jobs import defer_deletion
from .records import ObjectRecord, VersionLocked, loads, now_us

o, ov, op_, inl = t.objects.c, t.object_versions.c, t.object_parts.c, t.inline_data.c
_NAMES = tuple(c.name for c in t.objects.c)
assert _NAMES == tuple(c.name for c in t.object_versions.c)  # rows move between the two as they are

def _where_key(c):
    return and_(c.bucket == bindparam("bucket"), c.key == bindparam("key"))


def _where_version(c):
    return and_(_where_key(c), c.version_id == bindparam("version_id"))


def _with_inline(table, where):
    c = table.c
    return (select(*table.c, inl.data)
            .outerjoin(t.inline_data, and_(c.data_inline.is_(True), inl.id == c.data_location)).where(where))


Q_MOVE_TO_HISTORY = Prepared(t.object_versions.insert().from_select(
    _NAMES, select(*t.objects.c).where(_where_key(o))))
Q_CURRENT_VERSION = Prepared(select(*t.objects.c).where(_where_version(o)))
Q_CURRENT_VERSION_WITH_INLINE = Prepared(_with_inline(t.objects, _where_version(o)))
Q_OLD_VERSION = Prepared(select(*t.object_versions.c).where(_where_version(ov)))
Q_OLD_VERSION_WITH_INLINE = Prepared(_with_inline(t.object_versions, _where_version(ov)))
Q_LOCK_CURRENT = Prepared(select(*t.objects.c).where(_where_key(o)).with_for_update())
Q_LOCK_OLD_VERSION = Prepared(select(*t.object_versions.c).where(_where_version(ov)).with_for_update())
Q_NEWEST_OLD_VERSION = Prepared(select(*t.object_versions.c).where(_where_key(ov))
                                .order_by(ov.version_seq.desc()).limit(1))
# The current row takes another version's values in place (a write, a promotion):
# never deleted and re-inserted, so a writer waiting on its lock (FOR UPDATE)
# then finds the new current version instead of no row.
Q_REPLACE_CURRENT = Prepared(update(t.objects).where(o.bucket == bindparam("b_bucket"), o.key == bindparam("b_key"))
                     .values({n: bindparam(n) for n in _NAMES if n not in ("bucket", "key")}))
Q_DELETE_CURRENT = Prepared(delete(t.objects).where(_where_key(o)))
Q_DELETE_OLD_VERSION = Prepared(delete(t.object_versions).where(_where_key(ov), ov.version_seq == bindparam("seq")))
Q_VERSION_PARTS = Prepared(select(op_.part_number, op_.offset, op_.size, op_.etag, op_.checksums, op_.data_location)
                           .where(_where_version(op_)).order_by(op_.part_number))
Q_VERSION_PART_LOCATIONS = Prepared(select(op_.data_location).where(_where_version(op_)))
Q_DELETE_VERSION_PARTS = Prepared(delete(t.object_parts).where(_where_version(op_)))
Q_DELETE_INLINE = Prepared(delete(t.inline_data).where(inl.id == bindparam("id")))
Q_SET_ACL = {table.name: Prepared(update(table).where(
    table.c.bucket == bindparam("b_bucket"), table.c.key == bindparam("b_key"),
    table.c.version_id == bindparam("b_version_id"), table.c.delete_marker == false()).values(acl=bindparam("acl")))
    for table in (t.objects, t.object_versions)}
Q_SET_LOCK = {table.name: Prepared(update(table).where(
    table.c.bucket == bindparam("b_bucket"), table.c.key == bindparam("b_key"),
    table.c.version_id == bindparam("b_version_id")).values(
    lock_mode=bindparam("lock_mode"), lock_until=bindparam("lock_until"), legal_hold=bindparam("legal_hold")))
    for table in (t.objects, t.object_versions)}
Q_VERSION_SEQ = Prepared(union_all(
    select(o.version_seq).where(_where_version(o)), select(ov.version_seq).where(_where_version(ov))))


def _listing_arm(table, latest, high: bool):
    """One table's ListObjectVersions rows after the cursor (key, version_seq),
    with key < high: an index range scan (the cursor is written as a range on key,
    so the index bounds it)."""
    c = table.c
    after = and_(c.key >= bindparam("key"), or_(c.key > bindparam("key"), c.version_seq < bindparam("seq")))
    return (select(c.key, c.version_id, c.version_seq, latest.label("is_latest"), c.delete_marker, c.size, c.etag,
                   c.last_modified, c.storage_class, c.owner_id, c.owner_display_name)
            .where(c.bucket == bindparam("bucket"), after, *([c.key < bindparam("high")] if high else [])))


def _listing(high: bool) -> Prepared:
    """Both tables' rows in listing order (keys ascending, each key's versions
    newest first; a key's current version is its newest), up to ``limit``: one
    statement, so one snapshot, that merges the two ordered index scans and stops
    at the limit (SQLite: MERGE (UNION ALL); PostgreSQL: Merge Append, which its
    planner picks only when each arm has the order and limit too, else it sorts
    both tables' rows after the cursor). Reading each table up to a page and
    merging in Python read up to twice the rows into Python."""
    def build(dialect: str):
        arms = [_listing_arm(t.objects, true(), high), _listing_arm(t.object_versions, false(), high)]
        if dialect == "postgresql":  # SQLite refuses ORDER BY / LIMIT in a compound's arms
            arms = [a.order_by(a.selected_columns.key, a.selected_columns.version_seq.desc())
                    .limit(bindparam("limit")) for a in arms]
        both = union_all(*arms)
        cols = both.selected_columns
        return both.order_by(cols.key, cols.version_seq.desc()).limit(bindparam("limit"))
    return Prepared(build)


Q_LIST_VERSIONS = {high: _listing(high) for high in (False, True)}

_LOCATION, _INLINE, _PARTS_COUNT, _DELETE_MARKER = (
    _NAMES.index("data_location"), _NAMES.index("data_inline"), _NAMES.index("parts_count"),
    _NAMES.index("delete_marker"))
_VERSION_ID, _SEQ = _NAMES.index("version_id"), _NAMES.index("version_seq")
_ENCRYPTION = _NAMES.index("encryption")


def needs_parts(row, part_map: bool, with_bytes: bool) -> bool:
    """Whether a read of this version row needs its part map: asked for, or to
    read its bytes (parts as blobs; an encrypted composed blob's part offsets)."""
    return bool(row[_PARTS_COUNT]) and (part_map or (with_bytes and (
        row[_LOCATION] == t.MULTIPART_LOCATION or row[_ENCRYPTION] is not None)))


def release_version(cur: Cursor, bucket: str, key: str, version_id: str, old: tuple, not_before: int) -> None:
    """Drop what a replaced or deleted version owns besides its row (inline bytes,
    part rows), and hand its blobs to the sweeper: readers that already hold the
    version keep reading it until ``not_before``. ``old`` starts (location,
    inline, etag, parts_count) and ends with the delete-marker flag."""
    location, inline, parts_count, marker = old[0], old[1], old[3], old[-1]
    if marker:
        return  # a delete marker owns no bytes
    if inline:  # read in the same statement as its row: no reader can be left holding it
        cur.run(Q_DELETE_INLINE, id=location)
        return
    released = [location]
    params = dict(bucket=bucket, key=key, version_id=version_id)
    if location == t.MULTIPART_LOCATION:  # its bytes are its part blobs
        released = [r[0] for r in cur.all(Q_VERSION_PART_LOCATIONS, **params)]
    if parts_count:  # part rows (of a composed object too: they map partNumber to offsets)
        cur.run(Q_DELETE_VERSION_PARTS, **params)
    defer_deletion(cur, released, not_before)


def _release_row(cur: Cursor, row: tuple, not_before: int) -> None:
    """release_version for a full version row (objects/object_versions columns)."""
    release_version(cur, row[0], row[1], row[_VERSION_ID],
                    (row[_LOCATION], row[_INLINE], None, row[_PARTS_COUNT], row[_DELETE_MARKER]), not_before)


def move_to_history(cur: Cursor, bucket: str, key: str) -> None:
    """The current version becomes noncurrent (its row is then overwritten)."""
    cur.run(Q_MOVE_TO_HISTORY, bucket=bucket, key=key)


def take_null_from_history(cur: Cursor, bucket: str, key: str, not_before: int) -> None:
    """A new "null" version replaces a noncurrent one (a suspended bucket)."""
    old = cur.one(Q_LOCK_OLD_VERSION, bucket=bucket, key=key, version_id=t.NULL_VERSION)
    if old is not None:
        _release_row(cur, old, not_before)
        cur.run(Q_DELETE_OLD_VERSION, bucket=bucket, key=key, seq=old[_SEQ])


def object_record(row) -> ObjectRecord:
    m = dict(zip(_NAMES, row))
    return ObjectRecord(
        bucket=m["bucket"], key=m["key"], size=m["size"], etag=m["etag"], last_modified=m["last_modified"],
        owner_id=m["owner_id"], owner_display_name=m["owner_display_name"], data_location=m["data_location"],
        data_inline=bool(m["data_inline"]), storage_class=m["storage_class"], content_type=m["content_type"],
        content_headers=loads(m["content_headers"]), user_metadata=loads(m["user_metadata"]),
        checksums=loads(m["checksums"]), acl=m["acl"], parts_count=m["parts_count"],
        version_id=m["version_id"], version_seq=m["version_seq"], delete_marker=bool(m["delete_marker"]),
        lock_mode=m["lock_mode"], lock_until=m["lock_until"],
        legal_hold=None if m["legal_hold"] is None else bool(m["legal_hold"]),
        encryption=loads(m["encryption"]) if m["encryption"] else None,
        tags=loads(m["tags"]),
    )


class ObjectVersion(NamedTuple):
    """One committed version of an object, as a reader serves it: the row, its
    inline bytes (inline objects), and its part map (when asked for or needed),
    all from one snapshot."""
    record: ObjectRecord
    inline: bytes | None
    parts: list[tuple] | None  # (part_number, offset, size, etag, checksums, location)


def _lock_current(cur: Cursor, bucket: str, key: str):
    """The current version's row, locked: it serialises with every writer of the
    key. On PostgreSQL a lock that waited for a writer who deleted the row (its
    last version) finds nothing; a writer may have inserted the key again since,
    which the next statement sees, so look once more."""
    return cur.one(Q_LOCK_CURRENT, bucket=bucket, key=key) or cur.one(Q_LOCK_CURRENT, bucket=bucket, key=key)


class DeleteOutcome(NamedTuple):
    """What one delete did: S3's DeleteMarker / VersionId answer."""
    key: str
    version_id: str | None       # the version deleted, as asked for
    delete_marker: bool          # a delete marker was made, or the version deleted was one
    marker_version_id: str | None


class VersionChanged(Exception):
    """A conditional delete (``expect``) found the key's current version changed."""


class VersionQueries:
    """Version reads and deletes. Mixed into MetadataStore (needs ``self.db``,
    ``write_object``, ``garbage_not_before``)."""

    def get_version(self, bucket: str, key: str, version_id: str) -> ObjectRecord | None:
        def work(cur: Cursor):  # one snapshot: a version being promoted is found in one of the two
            return (cur.one(Q_CURRENT_VERSION, bucket=bucket, key=key, version_id=version_id)
                    or cur.one(Q_OLD_VERSION, bucket=bucket, key=key, version_id=version_id))
        row = self.db.read_snapshot(work)
        return object_record(row) if row else None

    def read_version(self, bucket: str, key: str, version_id: str, part_map: bool, with_bytes: bool):
        """read_object for one version id: row, inline bytes, parts, in one snapshot."""
        params = dict(bucket=bucket, key=key, version_id=version_id)

        def work(cur: Cursor):
            current, old = ((Q_CURRENT_VERSION_WITH_INLINE, Q_OLD_VERSION_WITH_INLINE) if with_bytes
                            else (Q_CURRENT_VERSION, Q_OLD_VERSION))
            row = cur.one(current, **params) or cur.one(old, **params)
            parts = None
            if row is not None and needs_parts(row, part_map, with_bytes):
                parts = cur.all(Q_VERSION_PARTS, **params)
            return row, parts
        row, parts = self.db.read_snapshot(work)
        if row is None:
            return None
        if not with_bytes:
            return ObjectVersion(object_record(row), None, parts)
        data = row[-1]
        return ObjectVersion(object_record(row[:-1]), bytes(data) if data is not None else None, parts)

    def delete_many(self, bucket: str, entries: list[tuple[str, str | None]], versioning: str | None,
                    new_marker: Callable[[str], ObjectRecord], bypass_governance: bool = False,
                    expect: dict[str, int] | None = None) -> list[DeleteOutcome | VersionLocked | VersionChanged]:
        """DeleteObject(s), in one transaction: per (key, version id or None), in
        order, its outcome or VersionLocked (that entry deleted nothing).

        Without a version id: a never-versioned bucket drops the key; a versioned
        one gets a delete marker (``new_marker(key)``) as its current version. With
        one: that version is deleted for good, unless Object Lock protects it; a
        version that does not exist counts as deleted, as in S3.

        ``expect`` (the lifecycle pass): key -> the version_seq its current version
        must still have, under the row lock; else that entry is VersionChanged and
        deletes nothing (a write since the pass looked is never expired)."""
        def work(cur: Cursor):
            not_before = self.garbage_not_before()
            out: list[DeleteOutcome | VersionLocked | VersionChanged] = []
            for key, version_id in entries:
                if expect is not None and key in expect:
                    current = _lock_current(cur, bucket, key)
                    if current is None or current[_SEQ] != expect[key]:
                        out.append(VersionChanged(key))
                        continue
                if version_id is not None:
                    try:
                        out.append(self._delete_version(cur, bucket, key, version_id, bypass_governance,
                                                        not_before))
                    except VersionLocked as locked:
                        out.append(locked)
                elif versioning is None:
                    current = cur.one(Q_LOCK_CURRENT, bucket=bucket, key=key)
                    if current is not None:
                        _release_row(cur, current, not_before)
                        cur.run(Q_DELETE_CURRENT, bucket=bucket, key=key)
                    out.append(DeleteOutcome(key, None, False, None))
                else:
                    marker = new_marker(key)
                    self.write_object(cur, marker, versioning=versioning)
                    out.append(DeleteOutcome(key, None, True, marker.version_id))
            return out
        return self.db.write(work)

    def _delete_version(self, cur: Cursor, bucket: str, key: str, version_id: str, bypass_governance: bool,
                        not_before: int) -> DeleteOutcome:
        current = _lock_current(cur, bucket, key)
        if current is None:
            return DeleteOutcome(key, version_id, False, None)
        is_current = current[_VERSION_ID] == version_id
        row = current if is_current else cur.one(Q_LOCK_OLD_VERSION, bucket=bucket, key=key,
                                                 version_id=version_id)
        if row is None:
            return DeleteOutcome(key, version_id, False, None)
        if object_record(row).locked_at(now_us(), bypass_governance):
            raise VersionLocked(key, version_id)
        _release_row(cur, row, not_before)
        if is_current:
            newest = cur.one(Q_NEWEST_OLD_VERSION, bucket=bucket, key=key)
            if newest is None:
                cur.run(Q_DELETE_CURRENT, bucket=bucket, key=key)
            else:  # the newest noncurrent version becomes current
                values = dict(zip(_NAMES, newest))
                del values["bucket"], values["key"]
                cur.run(Q_REPLACE_CURRENT, b_bucket=bucket, b_key=key, **values)
                cur.run(Q_DELETE_OLD_VERSION, bucket=bucket, key=key, seq=newest[_SEQ])
        else:
            cur.run(Q_DELETE_OLD_VERSION, bucket=bucket, key=key, seq=row[_SEQ])
        marker = bool(row[_DELETE_MARKER])
        return DeleteOutcome(key, version_id, marker, version_id if marker else None)

    def list_versions(self, bucket: str, after_key: str, after_seq: int, high: str | None,
                      limit: int) -> list[tuple]:
        """Up to ``limit`` versions after (after_key, after_seq) in listing order
        (keys ascending, versions newest first; ``after_seq`` -1: the whole key
        ``after_key`` is behind), with key < high: rows shaped as records.ListedVersion,
        left as the driver's tuples (a page is a thousand of them; flags are
        truthy ints on SQLite)."""
        params = dict(bucket=bucket, key=after_key, seq=after_seq, limit=limit)
        if high is not None:
            params["high"] = high
        return self.db.read(lambda cur: cur.all(Q_LIST_VERSIONS[high is not None], **params))

    def version_seq(self, bucket: str, key: str, version_id: str) -> int | None:
        """Where a version sits in its key's order (None: no such version)."""
        row = self.db.read(lambda cur: cur.one(Q_VERSION_SEQ, bucket=bucket, key=key, version_id=version_id))
        return row[0] if row else None

    def set_version_acl(self, bucket: str, key: str, version_id: str, acl: str) -> bool:
        def work(cur: Cursor) -> bool:
            if _lock_current(cur, bucket, key) is None:  # serialises with a promotion of this version
                return False
            args = dict(b_bucket=bucket, b_key=key, b_version_id=version_id, acl=acl)
            return cur.run(Q_SET_ACL["objects"], **args) == 1 or cur.run(Q_SET_ACL["object_versions"], **args) == 1
        return self.db.write(work)

    def change_lock(self, bucket: str, key: str, version_id: str | None,
                    change: Callable[[ObjectRecord], tuple[str | None, int | None, bool]]) -> ObjectRecord | None:
        """Replace a version's lock (retention mode, retain-until, legal hold) with
        ``change(record)``, which sees the version as it is under the row lock and
        raises to refuse. None when there is no such version (or it is a delete
        marker); else the record as it was."""
        def work(cur: Cursor):
            current = _lock_current(cur, bucket, key)
            if current is None:
                return None
            row, table = current, "objects"
            if version_id is not None and current[_VERSION_ID] != version_id:
                row, table = cur.one(Q_LOCK_OLD_VERSION, bucket=bucket, key=key, version_id=version_id), \
                    "object_versions"
            if row is None or row[_DELETE_MARKER]:
                return None
            record = object_record(row)
            mode, until, hold = change(record)
            cur.run(Q_SET_LOCK[table], b_bucket=bucket, b_key=key, b_version_id=record.version_id,
                    lock_mode=mode, lock_until=until, legal_hold=hold)
            return record
        return self.db.write(work)
