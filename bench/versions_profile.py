"""ListObjectVersions in-process: where a 1000-entry page spends its time.

No HTTP: a SQLite MetadataStore in a temporary directory holds ``--keys`` keys x
``--versions`` versions (the bench's versioned bucket), and each page runs the
service (``service.versions.list_object_versions``) and the handler's XML
rendering, as the server would, from key markers spread over the bucket.

    .venv/bin/python -m bench.versions_profile                # CPU ms a page, split by layer
    .venv/bin/python -m bench.versions_profile --profile 25   # plus cProfile's top 25
    .venv/bin/python -m bench.versions_profile --wsgi --profile 25   # whole requests (presigned
        # GETs through the WSGI app: auth, routing, middleware), without gunicorn
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

from bleepstore_app.config import load_settings
from bleepstore_app.metadata.engine import Database, make_engine
from bleepstore_app.metadata.records import ObjectRecord, now_us
from bleepstore_app.metadata.store import MetadataStore
from bleepstore_app.recovery import recover
from bleepstore_app.s3.handlers import versions as handler
from bleepstore_app.service import Caller, Services
from bleepstore_app.service import versions
from bleepstore_app.service.buckets import create_bucket
from bleepstore_app.storage import make_storage

BUCKET = "bench-versions"


def _settings(root: Path):
    return load_settings(environ={}, overrides={
        "metadata.sqlite.path": str(root / "m.db"), "metadata.sqlite.synchronous": "NORMAL",
        "storage.local.root_dir": str(root / "o"), "storage.local.fsync": False})


def build(root: Path, keys: int, per_key: int):
    settings = _settings(root)
    recover(settings)
    meta = MetadataStore(Database(make_engine(settings)))
    svc = Services(settings, meta, make_storage(settings))
    cred = settings.credentials[0]
    caller = Caller(cred.access_key, cred.owner_id, cred.display_name)
    create_bucket(svc, caller, BUCKET, None)
    versions.put_bucket_versioning(svc, caller, BUCKET, versions.ENABLED, None, None)
    names = [f"key-{i:07d}" for i in range(keys)]
    for _ in range(per_key):
        for start in range(0, keys, 500):
            def work(cur, batch=names[start:start + 500]):
                for key in batch:
                    meta.write_object(cur, ObjectRecord(
                        bucket=BUCKET, key=key, size=16, etag=uuid.uuid4().hex, last_modified=now_us(),
                        owner_id=caller.owner_id, owner_display_name=caller.display_name,
                        data_location=uuid.uuid4().hex, data_inline=True, version_id=uuid.uuid4().hex),
                        inline=b"x" * 16, versioning=versions.ENABLED)
            meta.db.write(work)
    return svc, caller, names


def _wsgi_pages(root: Path, max_keys: int, markers: list[str]):
    """page(marker) -> the response body of a presigned ListObjectVersions GET
    (URLs signed beforehand: the client's time is not counted)."""
    import boto3
    from botocore.config import Config

    from bleepstore_app import create_app
    settings = _settings(root)
    client = create_app(settings=settings).test_client()
    cred = settings.credentials[0]
    s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:9000", region_name="us-east-1",
                      aws_access_key_id=cred.access_key, aws_secret_access_key=cred.secret_key,
                      config=Config(s3={"addressing_style": "path"}))

    paths = {m: s3.generate_presigned_url("list_object_versions", ExpiresIn=3600, Params={
        "Bucket": BUCKET, "MaxKeys": max_keys, **({"KeyMarker": m} if m else {})}).split("127.0.0.1:9000", 1)[1]
        for m in markers}

    def page(marker):
        resp = client.get(paths[marker], base_url="http://127.0.0.1:9000")
        assert resp.status_code == 200, resp.data[:300]
        return resp.data
    return page


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--versions", type=int, default=3)
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--max-keys", type=int, default=1000)
    ap.add_argument("--wsgi", action="store_true", help="time whole presigned requests through the WSGI app")
    ap.add_argument("--sort", default="cumulative", help="cProfile order (cumulative, tottime)")
    ap.add_argument("--profile", type=int, default=0, help="print cProfile's top N functions (cumulative)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        began = time.process_time()
        svc, caller, names = build(Path(tmp), args.keys, args.versions)
        print(f"populated {args.keys:,} x {args.versions} in {time.process_time() - began:.1f} s")
        span = max(1, len(names) - args.max_keys // args.versions)
        markers = ["" if i == 0 else names[i * span // args.pages] for i in range(args.pages)]

        def page(marker):  # noqa: F811 (the handler's way, or the whole request's)
            req = SimpleNamespace(query={"max-keys": str(args.max_keys), **({"key-marker": marker} if marker else {})},
                                  bucket=BUCKET, caller=caller)
            return handler.list_object_versions(svc, req).xml

        if args.wsgi:
            page = _wsgi_pages(Path(tmp), args.max_keys, markers)
        for m in markers[:20]:
            page(m)  # warm caches
        service_s = 0.0
        for m in markers:
            t0 = time.process_time()
            versions.list_object_versions(svc, caller, BUCKET, "", "", m, "", args.max_keys)
            service_s += time.process_time() - t0
        meta_s = 0.0
        for m in markers:
            t0 = time.process_time()
            svc.meta.list_versions(BUCKET, m, -1, None, args.max_keys + 1)
            meta_s += time.process_time() - t0
        t0 = time.process_time()
        size = 0
        for m in markers:
            size = len(page(m))
        whole_s = time.process_time() - t0
        n = len(markers)
        print(f"per page ({args.max_keys} entries, {size:,} chars of XML, {n} pages): "
              f"whole {whole_s / n * 1e3:.2f} ms, service {service_s / n * 1e3:.2f} ms, "
              f"metadata.list_versions {meta_s / n * 1e3:.2f} ms")
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            for m in markers:
                page(m)
            prof.disable()
            pstats.Stats(prof).sort_stats(args.sort).print_stats(args.profile)


if __name__ == "__main__":
    main()
