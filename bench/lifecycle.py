"""Benchmark: one lifecycle pass over a bucket of 1,000,000 objects, 10% of which a rule
expires. Not part of the test suite.

The metadata is filled directly (bulk inserts through SQLAlchemy into a fresh SQLite
database with the schema of metadata/tables.py; fake blob locations: the pass only
unlinks, recording each blob for the sweeper, which this does not run). The rule is a
size filter (ObjectSizeGreaterThan), not a prefix, so the pass walks every key of the
bucket in batches and matches each row in Python: the harder case. The pass then runs
in a fresh process (the same code the workers run: jobs/lifecycle.run_lifecycle, as if
two days later), which reports its wall time and peak RSS (ru_maxrss).

    .venv/bin/python -m bench.lifecycle                   # 1,000,000 objects, 10% matching
    .venv/bin/python -m bench.lifecycle --objects 100000  # smaller
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAY_US = 86400 * 1_000_000
OWNER = "0" * 64
RULES = [{"id": "big", "status": "Enabled", "expiration": {"days": 1},
          "filter": {"shape": "filter", "prefix": "", "tags": {}, "gt": 4096, "lt": None}}]


def _settings(db_path: str):
    from bleepstore_app.config import load_settings
    return load_settings(environ={}, overrides={"metadata.sqlite.path": db_path,
                                                "storage.local.root_dir": str(Path(db_path).parent / "objects")})


def fill(db_path: str, objects: int, every: int) -> float:
    """The bucket and its rows; every ``every``-th object is large (matches the rule)."""
    import sqlalchemy as sa
    from bleepstore_app.metadata import tables as t
    engine = sa.create_engine(f"sqlite:///{db_path}")
    t.metadata.create_all(engine)
    started = time.monotonic()
    now = time.time_ns() // 1000
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.execute(t.buckets.insert().values(name="bench", owner_id=OWNER, owner_display_name="bench",
                                               region="us-east-1", created_at=now,
                                               lifecycle=json.dumps({"rules": RULES})))
    chunk = 20_000
    for start in range(0, objects, chunk):
        rows = [{"bucket": "bench", "key": f"data/{i:08d}", "size": 5000 if i % every == 0 else 100,
                 "etag": "d41d8cd98f00b204e9800998ecf8427e", "last_modified": now, "storage_class": "STANDARD",
                 "owner_id": OWNER, "owner_display_name": "bench", "data_location": f"fake{i:028d}",
                 "data_inline": False, "version_id": "null", "version_seq": now, "delete_marker": False}
                for i in range(start, min(start + chunk, objects))]
        with engine.begin() as conn:
            conn.execute(t.objects.insert(), rows)
    engine.dispose()
    return time.monotonic() - started


def run_pass(db_path: str) -> dict:
    """In this (fresh) process: one pass, its counts, wall time and peak RSS."""
    from bleepstore_app.jobs.lifecycle import run_lifecycle
    from bleepstore_app.metadata.engine import Database, make_engine
    from bleepstore_app.metadata.store import MetadataStore
    from bleepstore_app.service import Services
    settings = _settings(db_path)
    db = Database(make_engine(settings))
    svc = Services(settings, MetadataStore(db, settings.garbage_grace_seconds), None)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    counts = run_lifecycle(svc, now=time.time_ns() // 1000 + 2 * DAY_US)
    seconds = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    left = db.engine.connect().exec_driver_sql("SELECT count(*) FROM objects").scalar()
    garbage = db.engine.connect().exec_driver_sql("SELECT count(*) FROM blob_garbage").scalar()
    db.dispose()
    return {"counts": counts, "seconds": round(seconds, 2), "rss_before_mib": round(before / 1024, 1),
            "rss_peak_mib": round(peak / 1024, 1), "objects_left": left, "garbage_records": garbage}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=10, help="one object in EVERY matches (default 10: 10%%)")
    parser.add_argument("--run", help=argparse.SUPPRESS)  # the child process: run the pass on this database
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_pass(args.run)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bleepstore-lifecycle-bench-") as tmp:
        db_path = os.path.join(tmp, "metadata.db")
        fill_seconds = fill(db_path, args.objects, args.every)
        print(f"filled {args.objects:,} objects in {fill_seconds:.1f} s", file=sys.stderr)
        out = subprocess.run([sys.executable, "-m", "bench.lifecycle", "--run", db_path], capture_output=True,
                             text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
    expected = len(range(0, args.objects, args.every))
    result.update(objects=args.objects, expected_deletions=expected)
    print(json.dumps(result, indent=2))
    return 0 if result["counts"].get("expiration") == expected else 1


if __name__ == "__main__":
    sys.exit(main())
