"""Fixtures and helpers for the versioning conformance tests (test_versioning.py,
test_list_object_versions.py).

``make_bucket(status)`` makes a bucket with that versioning state (None: never
versioned) and, after the test, deletes every version and delete marker in it
(ListObjectVersions, then DeleteObject with each VersionId), aborts its multipart
uploads, then deletes the bucket. ``versioned_bucket`` is one with versioning
Enabled.
"""
from __future__ import annotations

import hashlib
import os
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from .support_issue4 import NS, describe, raw

SMALL = 1000                 # stored inline in the database
LARGE = 64 * 1024 + 123      # stored as a file
INLINE_MAX = 16 * 1024


def md5_etag(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest() + '"'


def payload(tag: str, size: int = SMALL) -> bytes:
    """A body that starts with ``tag`` (so a wrong version shows in a diff), random after."""
    head = tag.encode() + b":"
    return head[:size] + os.urandom(max(0, size - len(head)))


def set_versioning(s3, bucket: str, status: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def error_of(exc_info) -> tuple[str, int]:
    err = exc_info.value
    assert isinstance(err, ClientError), err
    return err.response["Error"]["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"]


def headers_of(exc_info) -> dict[str, str]:
    return exc_info.value.response["ResponseMetadata"]["HTTPHeaders"]


def all_versions(s3, bucket: str, **kwargs) -> tuple[list[dict], list[dict]]:
    """(Versions, DeleteMarkers) of the whole bucket through the boto3 paginator."""
    versions, markers = [], []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, **kwargs):
        versions += page.get("Versions", [])
        markers += page.get("DeleteMarkers", [])
    return versions, markers


def purge_bucket(s3, name: str) -> None:
    try:
        for _ in range(5):
            versions, markers = all_versions(s3, name)
            if not versions and not markers:
                break
            for entry in versions + markers:
                s3.delete_object(Bucket=name, Key=entry["Key"], VersionId=entry["VersionId"])
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=name):
            for upload in page.get("Uploads", []):
                s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        s3.delete_bucket(Bucket=name)
    except ClientError as err:
        if err.response["Error"]["Code"] != "NoSuchBucket":
            raise


@pytest.fixture
def make_bucket(s3):
    made: list[str] = []

    def make(status: str | None = "Enabled") -> str:
        name = "ver-" + uuid.uuid4().hex[:16]
        s3.create_bucket(Bucket=name)
        made.append(name)
        if status:
            set_versioning(s3, name, status)
        return name

    yield make
    for name in made:
        purge_bucket(s3, name)


@pytest.fixture
def versioned_bucket(make_bucket):
    """A fresh bucket with versioning Enabled; every version and marker goes after the test."""
    return make_bucket("Enabled")


# -- raw ListObjectVersions (document order: versions and delete markers interleaved) ----------

def list_versions_raw(server, bucket: str, **params: str) -> ET.Element:
    """GET /bucket?versions&... (params by their query names, e.g. ``**{"key-marker": "a"}``)."""
    query = "versions" + "".join(f"&{name}={quote(value, safe='')}" for name, value in params.items())
    resp = raw(server, "GET", f"/{bucket}", query=query)
    assert resp.status_code == 200, describe(resp)
    root = ET.fromstring(resp.content)
    assert root.tag == f"{NS}ListVersionsResult", resp.content[:300]
    return root


def entries(root: ET.Element) -> list[tuple[str, str, str, bool]]:
    """[(kind "Version"|"DeleteMarker", key, version id, is latest)] in document order."""
    out = []
    for child in root:
        kind = child.tag.replace(NS, "")
        if kind in ("Version", "DeleteMarker"):
            out.append((kind, child.findtext(f"{NS}Key"), child.findtext(f"{NS}VersionId"),
                        child.findtext(f"{NS}IsLatest") == "true"))
    return out


def history(server, bucket: str, key: str) -> list[tuple[str, str, bool]]:
    """[(kind, version id, is latest)] of one key, newest first, as the raw listing gives them."""
    return [(kind, vid, latest) for kind, k, vid, latest in entries(list_versions_raw(server, bucket, prefix=key))
            if k == key]
