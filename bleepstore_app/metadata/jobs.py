"""Queries for background work (a mixin of MetadataStore): the garbage list of
unlinked blobs, and leases that let a cluster run each job once at a time.

A lease is a row (name, holder, expires_at). Taking it is one write transaction
that succeeds only when the row is new, already ours, or expired; on PostgreSQL
the row lock makes two nodes racing for it see one winner (the loser's UPDATE
re-reads the row the winner committed and no longer matches).
"""
from __future__ import annotations

from sqlalchemy import bindparam, delete, insert, select, update

from . import tables as t
from .engine import Cursor, Prepared, dialect_insert

g, ls = t.blob_garbage.c, t.leases.c

Q_INSERT_GARBAGE = Prepared(insert(t.blob_garbage).values(location=bindparam("location"),
                                                           not_before=bindparam("not_before")))
Q_DUE_GARBAGE = Prepared(select(g.id, g.location).where(g.not_before <= bindparam("now"))
                         .order_by(g.not_before, g.id).limit(bindparam("limit")))
Q_FORGET_GARBAGE = Prepared(delete(t.blob_garbage).where(g.id == bindparam("id")))
Q_NEW_LEASE = Prepared(lambda d: dialect_insert(d, t.leases).values(
    name=bindparam("name"), holder=bindparam("holder"), expires_at=bindparam("expires_at"))
    .on_conflict_do_nothing(index_elements=["name"]))
Q_TAKE_LEASE = Prepared(update(t.leases).where(
    ls.name == bindparam("b_name"), (ls.holder == bindparam("b_holder")) | (ls.expires_at < bindparam("now")))
    .values(holder=bindparam("holder"), expires_at=bindparam("expires_at")))
Q_DROP_LEASE = Prepared(update(t.leases).where(ls.name == bindparam("b_name"), ls.holder == bindparam("b_holder"))
                        .values(expires_at=0))
Q_LEASE_PROGRESS = Prepared(select(ls.progress).where(ls.name == bindparam("name")))
Q_SET_PROGRESS = Prepared(update(t.leases).where(ls.name == bindparam("b_name"), ls.holder == bindparam("b_holder"))
                          .values(progress=bindparam("progress")))


def defer_deletion(cur: Cursor, locations: list[str], not_before: int) -> None:
    """Record blobs unlinked by the running transaction, for the sweeper."""
    cur.many(Q_INSERT_GARBAGE, [{"location": loc, "not_before": not_before} for loc in locations])


class JobQueries:
    """Garbage and leases. Mixed into MetadataStore (needs ``self.db``)."""

    def due_garbage(self, now_us: int, limit: int) -> list[tuple[int, str]]:
        """(id, location) of unlinked blobs whose grace has passed, oldest first."""
        return self.db.read(lambda cur: cur.all(Q_DUE_GARBAGE, now=now_us, limit=limit))

    def forget_garbage(self, ids: list[int]) -> None:
        """Drop the records of blobs the sweeper has deleted."""
        self.db.write(lambda cur: cur.many(Q_FORGET_GARBAGE, [{"id": i} for i in ids]))

    def take_lease(self, name: str, holder: str, now_us: int, ttl_us: int) -> bool:
        """Take (or renew) the named lease until now + ttl; False if someone else holds it."""
        expires = now_us + ttl_us

        def work(cur: Cursor) -> bool:
            if cur.run(Q_NEW_LEASE, name=name, holder=holder, expires_at=expires) == 1:
                return True
            return cur.run(Q_TAKE_LEASE, b_name=name, b_holder=holder, now=now_us, holder=holder,
                           expires_at=expires) == 1
        return self.db.write(work)

    def drop_lease(self, name: str, holder: str) -> None:
        """Give the lease up at once (if still ours), so the next taker need not wait."""
        self.db.write(lambda cur: cur.run(Q_DROP_LEASE, b_name=name, b_holder=holder))

    def lease_progress(self, name: str) -> str | None:
        row = self.db.read(lambda cur: cur.one(Q_LEASE_PROGRESS, name=name))
        return row[0] if row else None

    def set_lease_progress(self, name: str, holder: str, progress: str | None) -> bool:
        """Record the job's resume point; False if the lease is no longer ours."""
        return self.db.write(lambda cur: cur.run(Q_SET_PROGRESS, b_name=name, b_holder=holder,
                                                 progress=progress)) == 1
