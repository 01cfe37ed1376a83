"""Queries over stored encryption (a mixin of MetadataStore): walking every
encrypted version and upload to re-wrap its data key under a new master key
(``bleepstore encryption rewrap``)."""
from __future__ import annotations

from sqlalchemy import and_, bindparam, or_, select, update

from . import tables as t
from .engine import Cursor, Prepared

# Each table's primary key, walked in order (keyset pagination).
_KEYS = {"objects": ("bucket", "key"), "object_versions": ("bucket", "key", "version_seq"),
         "multipart_uploads": ("upload_id",)}
ENCRYPTED_TABLES = tuple(_KEYS)


def _after(table, names: tuple[str, ...]):
    """Rows strictly after the cursor (c0, c1, ...) in primary-key order."""
    cols = [table.c[n] for n in names]
    clauses = []
    for i, col in enumerate(cols):
        equal = [cols[j] == bindparam(f"after_{j}") for j in range(i)]
        clauses.append(and_(*equal, col > bindparam(f"after_{i}")))
    return or_(*clauses)


def _queries(name: str):
    table, names = t.metadata.tables[name], _KEYS[name]
    cols = [table.c[n] for n in names]
    base = select(*cols, table.c.encryption).where(table.c.encryption.is_not(None)).order_by(*cols) \
        .limit(bindparam("limit"))
    first = Prepared(base)
    later = Prepared(base.where(_after(table, names)))
    replace = Prepared(update(table).where(*(c == bindparam(f"k_{n}") for n, c in zip(names, cols)),
                                           table.c.encryption == bindparam("old"))
                       .values(encryption=bindparam("new")))
    return first, later, replace


_Q = {name: _queries(name) for name in ENCRYPTED_TABLES}


class EncryptionQueries:
    """Mixed into MetadataStore (needs ``self.db``)."""

    def encrypted_rows(self, table: str, after: tuple | None, limit: int) -> list[tuple[tuple, str]]:
        """(primary key, encryption JSON) of encrypted rows after ``after``, in key order."""
        first, later, _ = _Q[table]
        params = {f"after_{i}": v for i, v in enumerate(after)} if after is not None else {}
        rows = self.db.read(lambda cur: cur.all(later if after is not None else first, limit=limit, **params))
        return [(tuple(r[:-1]), r[-1]) for r in rows]

    def replace_encryption(self, table: str, key: tuple, old: str, new: str) -> bool:
        """Set a row's encryption JSON if it is still ``old`` (False: it changed or went)."""
        _, _, replace = _Q[table]
        params = {f"k_{n}": v for n, v in zip(_KEYS[table], key)}

        def work(cur: Cursor) -> bool:
            return cur.run(replace, old=old, new=new, **params) == 1
        return self.db.write(work)
