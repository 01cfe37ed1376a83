"""Tag-set writes (a mixin of MetadataStore): a version's tags change in place,
under the key's row lock, like its ACL; the bucket's tag set is one column."""
from __future__ import annotations

from sqlalchemy import bindparam, false, update

from . import tables as t
from .engine import Cursor, Prepared
from .versions import _VERSION_ID, _lock_current

Q_SET_TAGS = {table.name: Prepared(update(table).where(
    table.c.bucket == bindparam("b_bucket"), table.c.key == bindparam("b_key"),
    table.c.version_id == bindparam("b_version_id"), table.c.delete_marker == false()).values(tags=bindparam("tags")))
    for table in (t.objects, t.object_versions)}
Q_SET_BUCKET_TAGGING = Prepared(update(t.buckets).where(t.buckets.c.name == bindparam("b_name"))
                                .values(tagging=bindparam("tagging")))


class TaggingQueries:
    """Mixed into MetadataStore (needs ``self.db``)."""

    def set_object_tags(self, bucket: str, key: str, version_id: str | None, tags: str | None) -> str | None:
        """Replace the tag set (JSON, None for none) of the current version or of
        ``version_id``; the version id tagged, or None when there is no such
        version (or it is a delete marker)."""
        def work(cur: Cursor) -> str | None:
            current = _lock_current(cur, bucket, key)  # serialises with writers and promotions of the key
            if current is None:
                return None
            target = current[_VERSION_ID] if version_id is None else version_id
            args = dict(b_bucket=bucket, b_key=key, b_version_id=target, tags=tags)
            table = "objects" if target == current[_VERSION_ID] else "object_versions"
            return target if cur.run(Q_SET_TAGS[table], **args) == 1 else None
        return self.db.write(work)

    def set_bucket_tagging(self, name: str, tagging: str | None) -> None:
        """Store (JSON) or clear (None) the bucket's tag set."""
        self.db.write(lambda cur: cur.run(Q_SET_BUCKET_TAGGING, b_name=name, tagging=tagging))
