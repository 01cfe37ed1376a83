"""Multipart upload, per the AWS S3 API Reference: CreateMultipartUpload, UploadPart,
UploadPartCopy, CompleteMultipartUpload, AbortMultipartUpload, ListParts,
ListMultipartUploads, and GetObject/HeadObject of multipart objects (partNumber).

Each uploaded part is its own blob file on the server; the tests count those files
(under the session server's data directory) to check that completion, abort,
overwrite and delete leave none behind. Tests run one at a time, so the counts
taken inside one test see only that test's writes.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from .helpers import assert_client_error, assert_error, key_path, signed_request
from .support_multipart import (KiB, MiB, PART, abort_all, aws_cli, check_ok, checksum_b64,
                                complete, composite_checksum, data, file_md5, md5_hex, multipart_etag,
                                open_uploads, upload_parts)

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


@pytest.fixture
def mbucket(s3, bucket):
    """A fresh bucket whose open uploads are aborted after the test."""
    yield bucket
    abort_all(s3, bucket)


def _blobs(server) -> set[str]:
    """Every finished blob of the server's storage (local disk or gateway bucket)
    that outlives a pass of the sweeper: replaced and deleted data is deleted by
    the sweeper, not by the write that unlinked it."""
    server.sweep()
    return server.blobs()


def _object_blobs(server, parts: int) -> int:
    """Blobs a completed multipart object takes: its part blobs on the local disk,
    one composed blob on a gateway backend."""
    return parts if server.backend == "local" else 1


def _status(resp: dict) -> int:
    return resp["ResponseMetadata"]["HTTPStatusCode"]


def client_status(exc_info) -> int:
    return exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def _get(s3, bucket, key, **kwargs) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()


# -- the round trip ----------------------------------------------------------------------------

def test_complete_multipart_upload_round_trip(s3, mbucket):
    parts = [data(PART, 1), data(PART + 7, 2), data(1234, 3)]
    upload_id, done = upload_parts(s3, mbucket, "big/object.bin", parts)
    for body, part in zip(parts, done):
        assert part["ETag"] == f'"{md5_hex(body)}"'
    resp = complete(s3, mbucket, "big/object.bin", upload_id, done)
    expected_etag = f'"{multipart_etag(parts)}"'
    assert resp["ETag"] == expected_etag
    assert resp["Bucket"] == mbucket
    assert resp["Key"] == "big/object.bin"

    got = s3.get_object(Bucket=mbucket, Key="big/object.bin")
    assert got["Body"].read() == b"".join(parts)
    assert got["ETag"] == expected_etag
    assert got["ContentLength"] == sum(map(len, parts))
    head = s3.head_object(Bucket=mbucket, Key="big/object.bin")
    assert head["ETag"] == expected_etag
    assert head["ContentLength"] == sum(map(len, parts))
    listed = s3.list_objects_v2(Bucket=mbucket)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed] == [
        ("big/object.bin", sum(map(len, parts)), expected_etag)]
    assert open_uploads(s3, mbucket) == []


def test_complete_multipart_upload_single_small_part(s3, mbucket):
    """The last part may be smaller than 5 MiB, so may a lone part."""
    parts = [b"tiny"]
    upload_id, done = upload_parts(s3, mbucket, "one", parts)
    assert complete(s3, mbucket, "one", upload_id, done)["ETag"] == f'"{multipart_etag(parts)}"'
    assert _get(s3, mbucket, "one") == b"tiny"


def test_create_multipart_upload_attributes_carried_to_object(server, s3, mbucket):
    expires = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    parts = [data(PART, 11), data(100, 12)]
    upload_id, done = upload_parts(
        s3, mbucket, "attrs", parts, ContentType="text/x-bleep", ContentDisposition='attachment; filename="a.txt"',
        ContentEncoding="x-custom", ContentLanguage="fr-CA", CacheControl="max-age=60", Expires=expires,
        Metadata={"color": "blue", "answer": "42"}, StorageClass="REDUCED_REDUNDANCY", ACL="public-read")
    listed = s3.list_multipart_uploads(Bucket=mbucket)["Uploads"]
    assert [(u["Key"], u["StorageClass"]) for u in listed] == [("attrs", "REDUCED_REDUNDANCY")]
    assert s3.list_parts(Bucket=mbucket, Key="attrs", UploadId=upload_id)["StorageClass"] == "REDUCED_REDUNDANCY"
    complete(s3, mbucket, "attrs", upload_id, done)

    head = s3.head_object(Bucket=mbucket, Key="attrs")
    assert head["ContentType"] == "text/x-bleep"
    assert head["ContentDisposition"] == 'attachment; filename="a.txt"'
    assert head["ContentEncoding"] == "x-custom"
    assert head["ContentLanguage"] == "fr-CA"
    assert head["CacheControl"] == "max-age=60"
    assert head["Expires"] == expires
    assert head["Metadata"] == {"color": "blue", "answer": "42"}
    assert head["StorageClass"] == "REDUCED_REDUNDANCY"
    assert s3.list_objects_v2(Bucket=mbucket)["Contents"][0]["StorageClass"] == "REDUCED_REDUNDANCY"

    grants = s3.get_object_acl(Bucket=mbucket, Key="attrs")["Grants"]
    assert {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"} in grants
    anonymous = requests.get(f"{server.endpoint}/{mbucket}/attrs", timeout=30)
    assert anonymous.status_code == 200
    assert anonymous.content == b"".join(parts)


def test_create_multipart_upload_no_such_bucket(s3):
    with pytest.raises(ClientError) as exc:
        s3.create_multipart_upload(Bucket="no-such-bucket-" + uuid.uuid4().hex[:8], Key="k")
    assert_client_error(exc, "NoSuchBucket", 404)


# -- UploadPart ---------------------------------------------------------------------------------

def test_upload_part_reupload_replaces_part(server, s3, mbucket):
    before = _blobs(server)
    first, second = data(PART, 21), data(PART + 3, 22)
    tail = data(10, 23)
    upload_id, done = upload_parts(s3, mbucket, "k", [first, tail])
    old_etag = done[0]["ETag"]
    new_etag = s3.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=1, Body=second)["ETag"]
    assert new_etag == f'"{md5_hex(second)}"'
    assert len(_blobs(server) - before) == 2  # the replaced part's blob is gone

    parts = s3.list_parts(Bucket=mbucket, Key="k", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [
        (1, new_etag, len(second)), (2, done[1]["ETag"], len(tail))]
    with pytest.raises(ClientError) as exc:
        complete(s3, mbucket, "k", upload_id, [{"PartNumber": 1, "ETag": old_etag}, done[1]])
    assert_client_error(exc, "InvalidPart", 400)
    resp = complete(s3, mbucket, "k", upload_id, [{"PartNumber": 1, "ETag": new_etag}, done[1]])
    assert resp["ETag"] == f'"{multipart_etag([second, tail])}"'
    assert _get(s3, mbucket, "k") == second + tail


@pytest.mark.parametrize("number", ["0", "10001", "-1", "abc"])
def test_upload_part_invalid_part_number(server, s3, mbucket, number):
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="k")["UploadId"]
    resp = signed_request(server, "PUT", key_path(mbucket, "k"), query=f"partNumber={number}&uploadId={upload_id}",
                          body=b"some bytes")
    assert_error(resp, "InvalidArgument", 400)
    assert s3.list_parts(Bucket=mbucket, Key="k", UploadId=upload_id).get("Parts", []) == []


def test_upload_part_highest_part_number_accepted(s3, mbucket):
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="k")["UploadId"]
    s3.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=10000, Body=b"last")
    parts = s3.list_parts(Bucket=mbucket, Key="k", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(10000, 4)]


def test_upload_part_no_such_upload(s3, mbucket):
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=mbucket, Key="k", UploadId="0" * 40, PartNumber=1, Body=b"x")
    assert_client_error(exc, "NoSuchUpload", 404)


def test_upload_part_upload_id_of_another_key(s3, mbucket):
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="one")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=mbucket, Key="two", UploadId=upload_id, PartNumber=1, Body=b"x")
    assert_client_error(exc, "NoSuchUpload", 404)


def test_upload_part_content_md5_mismatch(s3, mbucket):
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="k")["UploadId"]
    wrong = base64.b64encode(hashlib.md5(b"other bytes").digest()).decode()
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"the bytes", ContentMD5=wrong)
    assert_client_error(exc, "BadDigest", 400)
    assert s3.list_parts(Bucket=mbucket, Key="k", UploadId=upload_id).get("Parts", []) == []


def test_upload_part_checksum_algorithm_mismatch(s3, mbucket):
    """An upload created for SHA256 rejects a part checksummed with CRC32: InvalidRequest
    ("Checksum Type mismatch occurred, expected checksum Type: sha256, actual checksum Type: crc32")."""
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="k", ChecksumAlgorithm="SHA256")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"the bytes",
                       ChecksumAlgorithm="CRC32")
    assert_client_error(exc, "InvalidRequest", 400)
    assert s3.list_parts(Bucket=mbucket, Key="k", UploadId=upload_id).get("Parts", []) == []


@pytest.mark.parametrize("storage_class", ["NOT_A_CLASS", "DEEP_ARCHIVE"])
def test_create_multipart_upload_invalid_storage_class(server, mbucket, storage_class):
    resp = signed_request(server, "POST", key_path(mbucket, "k"), query="uploads=",
                          headers={"x-amz-storage-class": storage_class})
    assert_error(resp, "InvalidStorageClass", 400)


def test_upload_part_concurrent_same_number_keeps_one_blob(server, s3, mbucket):
    before = _blobs(server)
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="k")["UploadId"]
    bodies = [data(256 * KiB, 170 + i) for i in range(8)]
    barrier = threading.Barrier(len(bodies))

    def send(body):
        barrier.wait()
        return s3.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=1, Body=body)["ETag"]

    with ThreadPoolExecutor(len(bodies)) as pool:
        etags = list(pool.map(send, bodies))
    assert etags == [f'"{md5_hex(b)}"' for b in bodies]
    part, = s3.list_parts(Bucket=mbucket, Key="k", UploadId=upload_id)["Parts"]
    assert part["ETag"] in etags
    assert len(_blobs(server) - before) == 1
    complete(s3, mbucket, "k", upload_id, [{"PartNumber": 1, "ETag": part["ETag"]}])
    assert _get(s3, mbucket, "k") == bodies[etags.index(part["ETag"])]


def test_abort_multipart_upload_during_part_uploads_leaves_no_blobs(server, s3, mbucket):
    before = _blobs(server)
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="k")["UploadId"]
    body = data(512 * KiB, 180)
    started = threading.Semaphore(0)

    def keep_sending(worker: int) -> str:
        for n in range(1, 200):
            try:
                s3.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=worker * 200 + n, Body=body)
            except ClientError as e:
                return e.response["Error"]["Code"]
            started.release()
        return "never stopped"

    with ThreadPoolExecutor(4) as pool:
        results = [pool.submit(keep_sending, w) for w in range(4)]
        for _ in range(12):
            assert started.acquire(timeout=30)
        assert _status(s3.abort_multipart_upload(Bucket=mbucket, Key="k", UploadId=upload_id)) == 204
        codes = [r.result(timeout=60) for r in results]
    assert codes == ["NoSuchUpload"] * 4
    assert _blobs(server) == before


# -- CompleteMultipartUpload errors ----------------------------------------------------------------

@pytest.mark.parametrize("order", [[2, 1], [1, 1]], ids=["descending", "duplicate"])
def test_complete_multipart_upload_invalid_part_order(s3, mbucket, order):
    upload_id, done = upload_parts(s3, mbucket, "k", [data(PART, 31), data(PART, 32)])
    by_number = {p["PartNumber"]: p for p in done}
    with pytest.raises(ClientError) as exc:
        complete(s3, mbucket, "k", upload_id, [by_number[n] for n in order])
    assert_client_error(exc, "InvalidPartOrder", 400)


def test_complete_multipart_upload_wrong_etag(s3, mbucket):
    upload_id, done = upload_parts(s3, mbucket, "k", [data(PART, 41), b"tail"])
    done[1]["ETag"] = f'"{md5_hex(b"something else")}"'
    with pytest.raises(ClientError) as exc:
        complete(s3, mbucket, "k", upload_id, done)
    assert_client_error(exc, "InvalidPart", 400)


def test_complete_multipart_upload_part_never_uploaded(s3, mbucket):
    upload_id, done = upload_parts(s3, mbucket, "k", [data(PART, 42)])
    with pytest.raises(ClientError) as exc:
        complete(s3, mbucket, "k", upload_id, done + [{"PartNumber": 2, "ETag": f'"{md5_hex(b"x")}"'}])
    assert_client_error(exc, "InvalidPart", 400)


def test_complete_multipart_upload_entity_too_small(s3, mbucket):
    small = [data(MiB, 51), data(MiB, 52)]
    upload_id, done = upload_parts(s3, mbucket, "k", small)
    with pytest.raises(ClientError) as exc:
        complete(s3, mbucket, "k", upload_id, done)
    assert_client_error(exc, "EntityTooSmall", 400)
    # The upload is still there and can be fixed and completed.
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=mbucket, Key="k", UploadId=upload_id)["Parts"]] == [1, 2]
    big = data(PART, 53)
    done[0]["ETag"] = s3.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=1, Body=big)["ETag"]
    resp = complete(s3, mbucket, "k", upload_id, done)
    assert resp["ETag"] == f'"{multipart_etag([big, small[1]])}"'
    assert _get(s3, mbucket, "k") == big + small[1]


def test_complete_multipart_upload_unquoted_etags(s3, mbucket):
    parts = [data(PART, 54), b"end"]
    upload_id, done = upload_parts(s3, mbucket, "k", parts)
    bare = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"].strip('"')} for p in done]
    assert complete(s3, mbucket, "k", upload_id, bare)["ETag"] == f'"{multipart_etag(parts)}"'


def test_complete_multipart_upload_no_such_upload(s3, mbucket):
    with pytest.raises(ClientError) as exc:
        complete(s3, mbucket, "k", "0" * 40, [{"PartNumber": 1, "ETag": f'"{md5_hex(b"x")}"'}])
    assert_client_error(exc, "NoSuchUpload", 404)


def test_complete_multipart_upload_empty_part_list(server, s3, mbucket):
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="k")["UploadId"]
    s3.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"x")
    body = b'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></CompleteMultipartUpload>'
    resp = signed_request(server, "POST", key_path(mbucket, "k"), query=f"uploadId={upload_id}", body=body)
    assert_error(resp, "MalformedXML", 400)


def test_complete_multipart_upload_subset_of_parts_removes_unlisted_blobs(server, s3, mbucket):
    before = _blobs(server)
    parts = [data(PART, 61), data(PART, 62), data(3000, 63), data(PART, 64)]
    upload_id, done = upload_parts(s3, mbucket, "k", parts)
    assert len(_blobs(server) - before) == 4
    chosen = [done[0], done[2]]
    resp = complete(s3, mbucket, "k", upload_id, chosen)
    assert resp["ETag"] == f'"{multipart_etag([parts[0], parts[2]])}"'
    assert _get(s3, mbucket, "k") == parts[0] + parts[2]
    assert len(_blobs(server) - before) == _object_blobs(server, 2)
    assert before <= _blobs(server)
    head = s3.head_object(Bucket=mbucket, Key="k", PartNumber=2)
    assert head["PartsCount"] == 2
    assert head["ContentLength"] == len(parts[2])


def test_complete_multipart_upload_retry_returns_same_result(s3, mbucket):
    parts = [data(PART, 71), data(99, 72)]
    upload_id, done = upload_parts(s3, mbucket, "k", parts)
    first = complete(s3, mbucket, "k", upload_id, done)
    again = complete(s3, mbucket, "k", upload_id, done)
    assert again["ETag"] == first["ETag"] == f'"{multipart_etag(parts)}"'
    assert (again["Bucket"], again["Key"]) == (mbucket, "k")
    assert _get(s3, mbucket, "k") == b"".join(parts)
    assert open_uploads(s3, mbucket) == []


def test_upload_part_after_complete_no_such_upload(s3, mbucket):
    upload_id, done = upload_parts(s3, mbucket, "k", [b"only"])
    complete(s3, mbucket, "k", upload_id, done)
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=2, Body=b"late")
    assert_client_error(exc, "NoSuchUpload", 404)
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=mbucket, Key="k", UploadId=upload_id)
    assert_client_error(exc, "NoSuchUpload", 404)
    assert _get(s3, mbucket, "k") == b"only"


# -- AbortMultipartUpload ----------------------------------------------------------------------

def test_abort_multipart_upload_removes_upload_and_part_blobs(server, s3, mbucket):
    before = _blobs(server)
    upload_id, done = upload_parts(s3, mbucket, "k", [data(PART, 81), data(10, 82), data(20_000, 83)])
    assert len(_blobs(server) - before) == 3
    resp = s3.abort_multipart_upload(Bucket=mbucket, Key="k", UploadId=upload_id)
    assert _status(resp) == 204
    assert _blobs(server) == before
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=mbucket, Key="k", UploadId=upload_id)
    assert_client_error(exc, "NoSuchUpload", 404)
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=4, Body=b"x")
    assert_client_error(exc, "NoSuchUpload", 404)
    assert _blobs(server) == before
    with pytest.raises(ClientError) as exc:
        complete(s3, mbucket, "k", upload_id, [{"PartNumber": 1, "ETag": done[0]["ETag"]}])
    assert_client_error(exc, "NoSuchUpload", 404)
    assert open_uploads(s3, mbucket) == []
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=mbucket, Key="k")
    assert client_status(exc) == 404


def test_abort_multipart_upload_no_such_upload(s3, mbucket):
    with pytest.raises(ClientError) as exc:
        s3.abort_multipart_upload(Bucket=mbucket, Key="k", UploadId="0" * 40)
    assert_client_error(exc, "NoSuchUpload", 404)


# -- ListParts ------------------------------------------------------------------------------------

def test_list_parts_pagination(s3, mbucket):
    numbers = [1, 2, 3, 5, 8, 9, 10]
    bodies = {n: data(100 * n + 1, 90 + n) for n in numbers}
    upload_id, done = upload_parts(s3, mbucket, "k", [bodies[n] for n in numbers], numbers=numbers)
    etags = {p["PartNumber"]: p["ETag"] for p in done}

    seen, marker, pages = [], 0, 0
    while True:
        page = s3.list_parts(Bucket=mbucket, Key="k", UploadId=upload_id, MaxParts=3, PartNumberMarker=marker)
        pages += 1
        assert page["MaxParts"] == 3
        assert page["PartNumberMarker"] == marker
        assert page["UploadId"] == upload_id
        assert (page["Bucket"], page["Key"]) == (mbucket, "k")
        assert page["StorageClass"] == "STANDARD"
        assert page["Owner"]["ID"] and page["Initiator"]["ID"] == page["Owner"]["ID"]
        got = page.get("Parts", [])
        assert len(got) <= 3
        for p in got:
            assert p["ETag"] == etags[p["PartNumber"]] == f'"{md5_hex(bodies[p["PartNumber"]])}"'
            assert p["Size"] == len(bodies[p["PartNumber"]])
            assert isinstance(p["LastModified"], dt.datetime)
        seen += [p["PartNumber"] for p in got]
        if not page["IsTruncated"]:
            break
        assert page["NextPartNumberMarker"] == got[-1]["PartNumber"]
        marker = page["NextPartNumberMarker"]
        assert pages < 10
    assert seen == numbers
    assert pages == 3

    paginated = [p["PartNumber"] for page in s3.get_paginator("list_parts").paginate(
        Bucket=mbucket, Key="k", UploadId=upload_id, PaginationConfig={"PageSize": 2}) for p in page.get("Parts", [])]
    assert paginated == numbers
    everything = s3.list_parts(Bucket=mbucket, Key="k", UploadId=upload_id)
    assert everything["IsTruncated"] is False
    assert [p["PartNumber"] for p in everything["Parts"]] == numbers


def test_list_parts_no_such_upload(s3, mbucket):
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=mbucket, Key="k", UploadId="0" * 40)
    assert_client_error(exc, "NoSuchUpload", 404)


# -- ListMultipartUploads -------------------------------------------------------------------------

def _create(s3, bucket, keys) -> list[tuple[str, str]]:
    return [(k, s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"]) for k in keys]


def test_list_multipart_uploads_prefix_and_delimiter(s3, mbucket):
    created = _create(s3, mbucket, ["a/x", "a/y", "a/y", "b/z/1", "b/z/2", "c", "c", "d/"])
    page = s3.list_multipart_uploads(Bucket=mbucket, Delimiter="/")
    assert page["Delimiter"] == "/"
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a/", "b/", "d/"]
    assert sorted(u["UploadId"] for u in page["Uploads"]) == sorted(u for k, u in created if k == "c")
    assert [u["Key"] for u in page["Uploads"]] == ["c", "c"]
    assert page["IsTruncated"] is False

    page = s3.list_multipart_uploads(Bucket=mbucket, Prefix="a/")
    assert page["Prefix"] == "a/"
    assert [u["Key"] for u in page["Uploads"]] == ["a/x", "a/y", "a/y"]
    assert sorted(u["UploadId"] for u in page["Uploads"]) == sorted(u for k, u in created if k.startswith("a/"))
    assert "CommonPrefixes" not in page

    page = s3.list_multipart_uploads(Bucket=mbucket, Prefix="b/", Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["b/z/"]
    assert "Uploads" not in page

    page = s3.list_multipart_uploads(Bucket=mbucket, Prefix="nothing")
    assert "Uploads" not in page and "CommonPrefixes" not in page


def test_list_multipart_uploads_fields(s3, mbucket):
    (key, upload_id), = _create(s3, mbucket, ["only"])
    upload, = s3.list_multipart_uploads(Bucket=mbucket)["Uploads"]
    assert (upload["Key"], upload["UploadId"], upload["StorageClass"]) == (key, upload_id, "STANDARD")
    assert upload["Owner"]["ID"] and upload["Initiator"]["ID"] == upload["Owner"]["ID"]
    age = dt.datetime.now(dt.timezone.utc) - upload["Initiated"]
    assert abs(age.total_seconds()) < 120


def test_list_multipart_uploads_pagination(s3, mbucket):
    keys = ["k1", "k1", "k1", "k2", "k3", "k3", "k4/a", "k5"]
    created = _create(s3, mbucket, keys)
    full = s3.list_multipart_uploads(Bucket=mbucket)
    everything = [(u["Key"], u["UploadId"]) for u in full["Uploads"]]
    assert full["IsTruncated"] is False
    assert sorted(everything) == sorted(created)
    assert [k for k, _ in everything] == sorted(keys)

    for size in (1, 2, 3):
        walked, params, pages = [], {}, 0
        while True:
            page = s3.list_multipart_uploads(Bucket=mbucket, MaxUploads=size, **params)
            pages += 1
            assert page["MaxUploads"] == size
            got = [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
            assert 0 < len(got) <= size
            walked += got
            if not page["IsTruncated"]:
                break
            assert (page["NextKeyMarker"], page["NextUploadIdMarker"]) == got[-1]
            params = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}
            assert pages <= len(keys)
        assert walked == everything, size

    # key-marker alone: only keys after it.
    page = s3.list_multipart_uploads(Bucket=mbucket, KeyMarker="k1")
    assert [(u["Key"], u["UploadId"]) for u in page["Uploads"]] == everything[3:]
    assert page["KeyMarker"] == "k1"
    # key-marker and upload-id-marker: the key's later uploads, then later keys.
    page = s3.list_multipart_uploads(Bucket=mbucket, KeyMarker="k1", UploadIdMarker=everything[0][1])
    assert [(u["Key"], u["UploadId"]) for u in page["Uploads"]] == everything[1:]
    assert page["UploadIdMarker"] == everything[0][1]


def test_list_multipart_uploads_pagination_with_delimiter(s3, mbucket):
    _create(s3, mbucket, ["a/1", "a/2", "b", "c/1", "c/2", "c/3", "d"])
    entries, params = [], {}
    for _ in range(10):
        page = s3.list_multipart_uploads(Bucket=mbucket, Delimiter="/", MaxUploads=1, **params)
        got = [u["Key"] for u in page.get("Uploads", [])] + [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        assert len(got) == 1, page
        entries += got
        if not page["IsTruncated"]:
            break
        params = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page.get("NextUploadIdMarker", "")}
    assert entries == ["a/", "b", "c/", "d"]


def test_list_multipart_uploads_same_key_sorted_by_initiation_time(s3, mbucket):
    """"Uploads are sorted in ascending order within each key by the upload initiation time"
    (ListMultipartUploads, AWS S3 API Reference)."""
    created = []
    for _ in range(6):
        created.append(s3.create_multipart_upload(Bucket=mbucket, Key="same")["UploadId"])
        time.sleep(0.02)
    uploads = s3.list_multipart_uploads(Bucket=mbucket)["Uploads"]
    assert [u["UploadId"] for u in uploads] == created


def test_list_multipart_uploads_excludes_completed_and_aborted(s3, mbucket):
    done_id, done = upload_parts(s3, mbucket, "done", [b"abc"])
    aborted_id, _ = upload_parts(s3, mbucket, "aborted", [b"def"])
    open_id, _ = upload_parts(s3, mbucket, "open", [b"ghi"])
    complete(s3, mbucket, "done", done_id, done)
    s3.abort_multipart_upload(Bucket=mbucket, Key="aborted", UploadId=aborted_id)
    assert open_uploads(s3, mbucket) == [("open", open_id)]


# -- UploadPartCopy ------------------------------------------------------------------------------

def _source(s3, bucket, kind) -> bytes:
    """A source object stored inline (< 16 KiB), as one file, or as a multipart object."""
    if kind == "multipart":
        parts = [data(PART, 101), data(70 * KiB, 102)]
        upload_id, done = upload_parts(s3, bucket, "src", parts)
        complete(s3, bucket, "src", upload_id, done)
        return b"".join(parts)
    body = data(1000 if kind == "inline" else 64 * KiB + 123, 100)
    s3.put_object(Bucket=bucket, Key="src", Body=body)
    return body


SOURCES = pytest.mark.parametrize("kind", ["inline", "file", "multipart"])
RANGES = {"inline": (100, 899), "file": (1000, 50_000), "multipart": (PART - 1000, PART + 999)}


@SOURCES
def test_upload_part_copy_whole_source(s3, mbucket, kind):
    source = _source(s3, mbucket, kind)
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="dst")["UploadId"]
    resp = s3.upload_part_copy(Bucket=mbucket, Key="dst", UploadId=upload_id, PartNumber=1,
                               CopySource={"Bucket": mbucket, "Key": "src"})
    etag = resp["CopyPartResult"]["ETag"]
    assert etag == f'"{md5_hex(source)}"'
    assert isinstance(resp["CopyPartResult"]["LastModified"], dt.datetime)
    part, = s3.list_parts(Bucket=mbucket, Key="dst", UploadId=upload_id)["Parts"]
    assert (part["PartNumber"], part["ETag"], part["Size"]) == (1, etag, len(source))
    out = complete(s3, mbucket, "dst", upload_id, [{"PartNumber": 1, "ETag": etag}])
    assert out["ETag"] == f'"{multipart_etag([source])}"'
    assert _get(s3, mbucket, "dst") == source


@SOURCES
def test_upload_part_copy_range(s3, mbucket, kind):
    source = _source(s3, mbucket, kind)
    first, last = RANGES[kind]
    expected = source[first:last + 1]
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="dst")["UploadId"]
    resp = s3.upload_part_copy(Bucket=mbucket, Key="dst", UploadId=upload_id, PartNumber=1,
                               CopySource={"Bucket": mbucket, "Key": "src"}, CopySourceRange=f"bytes={first}-{last}")
    etag = resp["CopyPartResult"]["ETag"]
    assert etag == f'"{md5_hex(expected)}"'
    complete(s3, mbucket, "dst", upload_id, [{"PartNumber": 1, "ETag": etag}])
    assert _get(s3, mbucket, "dst") == expected


def test_upload_part_copy_mixed_with_uploaded_parts(s3, mbucket):
    source = _source(s3, mbucket, "multipart")
    s3.put_object(Bucket=mbucket, Key="small", Body=b"0123456789" * 100)
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="dst")["UploadId"]
    p1 = s3.upload_part_copy(Bucket=mbucket, Key="dst", UploadId=upload_id, PartNumber=1,
                             CopySource={"Bucket": mbucket, "Key": "src"})["CopyPartResult"]["ETag"]
    middle = data(PART, 110)
    p2 = s3.upload_part(Bucket=mbucket, Key="dst", UploadId=upload_id, PartNumber=2, Body=middle)["ETag"]
    p3 = s3.upload_part_copy(Bucket=mbucket, Key="dst", UploadId=upload_id, PartNumber=3,
                             CopySource={"Bucket": mbucket, "Key": "small"},
                             CopySourceRange="bytes=5-24")["CopyPartResult"]["ETag"]
    tail = (b"0123456789" * 100)[5:25]
    out = complete(s3, mbucket, "dst", upload_id, [{"PartNumber": 1, "ETag": p1}, {"PartNumber": 2, "ETag": p2},
                                                   {"PartNumber": 3, "ETag": p3}])
    assert out["ETag"] == f'"{multipart_etag([source, middle, tail])}"'
    assert _get(s3, mbucket, "dst") == source + middle + tail


def _failed_conditions(head) -> list[dict]:
    etag, modified = head["ETag"], head["LastModified"]
    return [{"CopySourceIfMatch": '"' + "0" * 32 + '"'},
            {"CopySourceIfNoneMatch": etag},
            {"CopySourceIfModifiedSince": modified},
            {"CopySourceIfUnmodifiedSince": modified - dt.timedelta(days=1)}]


@pytest.mark.parametrize("which", range(4), ids=["if-match", "if-none-match", "if-modified-since",
                                                  "if-unmodified-since"])
def test_upload_part_copy_source_conditions_fail(s3, mbucket, which):
    _source(s3, mbucket, "file")
    head = s3.head_object(Bucket=mbucket, Key="src")
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="dst")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(Bucket=mbucket, Key="dst", UploadId=upload_id, PartNumber=1,
                            CopySource={"Bucket": mbucket, "Key": "src"}, **_failed_conditions(head)[which])
    assert_client_error(exc, "PreconditionFailed", 412)
    assert s3.list_parts(Bucket=mbucket, Key="dst", UploadId=upload_id).get("Parts", []) == []


def test_upload_part_copy_source_conditions_pass(s3, mbucket):
    source = _source(s3, mbucket, "file")
    head = s3.head_object(Bucket=mbucket, Key="src")
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="dst")["UploadId"]
    resp = s3.upload_part_copy(Bucket=mbucket, Key="dst", UploadId=upload_id, PartNumber=1,
                               CopySource={"Bucket": mbucket, "Key": "src"}, CopySourceIfMatch=head["ETag"],
                               CopySourceIfNoneMatch='"' + "0" * 32 + '"',
                               CopySourceIfUnmodifiedSince=head["LastModified"] + dt.timedelta(days=1))
    assert resp["CopyPartResult"]["ETag"] == f'"{md5_hex(source)}"'


@pytest.mark.parametrize("value", ["bytes=abc-def", "bytes=0-", "bytes=-5", "0-10", "bytes=0-2,4-6"])
def test_upload_part_copy_malformed_range(s3, mbucket, value):
    """A copy-source range not of the form bytes=first-last is InvalidArgument (400)."""
    _source(s3, mbucket, "file")
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="dst")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(Bucket=mbucket, Key="dst", UploadId=upload_id, PartNumber=1,
                            CopySource={"Bucket": mbucket, "Key": "src"}, CopySourceRange=value)
    assert_client_error(exc, "InvalidArgument", 400)


@pytest.mark.parametrize("value", ["bytes=10-5", "bytes=0-65659", "bytes=70000-70010"])
def test_upload_part_copy_range_outside_source(s3, mbucket, value):
    """Reversed or past the end of the (65659-byte) source: an error, no part. S3 has been
    seen to answer InvalidArgument (400); InvalidRange (416) is accepted too."""
    _source(s3, mbucket, "file")
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="dst")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(Bucket=mbucket, Key="dst", UploadId=upload_id, PartNumber=1,
                            CopySource={"Bucket": mbucket, "Key": "src"}, CopySourceRange=value)
    code = exc.value.response["Error"]["Code"]
    assert (code, client_status(exc)) in {("InvalidArgument", 400), ("InvalidRange", 416)}
    assert s3.list_parts(Bucket=mbucket, Key="dst", UploadId=upload_id).get("Parts", []) == []


def test_upload_part_copy_no_such_source(s3, mbucket):
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="dst")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(Bucket=mbucket, Key="dst", UploadId=upload_id, PartNumber=1,
                            CopySource={"Bucket": mbucket, "Key": "missing"})
    assert_client_error(exc, "NoSuchKey", 404)


# -- reading multipart objects ----------------------------------------------------------------------

@pytest.fixture
def three_part_object(s3, mbucket):
    parts = [data(PART, 121), data(PART + 7, 122), data(100, 123)]
    upload_id, done = upload_parts(s3, mbucket, "obj", parts)
    complete(s3, mbucket, "obj", upload_id, done)
    return parts


def test_get_object_part_number(s3, mbucket, three_part_object):
    parts = three_part_object
    total, offset = sum(map(len, parts)), 0
    for number, body in enumerate(parts, start=1):
        got = s3.get_object(Bucket=mbucket, Key="obj", PartNumber=number)
        assert _status(got) == 206
        assert got["PartsCount"] == 3
        assert got["ContentLength"] == len(body)
        assert got["ContentRange"] == f"bytes {offset}-{offset + len(body) - 1}/{total}"
        assert got["ETag"] == f'"{multipart_etag(parts)}"'
        assert got["Body"].read() == body
        offset += len(body)


def test_head_object_part_number(s3, mbucket, three_part_object):
    parts = three_part_object
    total = sum(map(len, parts))
    head = s3.head_object(Bucket=mbucket, Key="obj", PartNumber=2)
    assert _status(head) == 206
    assert head["PartsCount"] == 3
    assert head["ContentLength"] == len(parts[1])
    assert head["ContentRange"] == f"bytes {PART}-{PART + len(parts[1]) - 1}/{total}"


def test_get_object_part_number_beyond_count(s3, mbucket, three_part_object):
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=mbucket, Key="obj", PartNumber=4)
    assert_client_error(exc, "InvalidPartNumber", 416)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=mbucket, Key="obj", PartNumber=4)
    assert client_status(exc) == 416


@pytest.mark.parametrize("first,last", [
    (PART - 10, PART + 9),                 # across the first boundary
    (PART - 1, 2 * PART + 7),              # the last byte of part 1, all of part 2, the first of part 3
    (0, 2 * PART + 7 + 99),                # everything
    (2 * PART + 7 - 3, 2 * PART + 7 + 2),  # across the second boundary
    (PART, PART),                          # the first byte of part 2
])
def test_get_object_range_spanning_parts(s3, mbucket, three_part_object, first, last):
    whole = b"".join(three_part_object)
    got = s3.get_object(Bucket=mbucket, Key="obj", Range=f"bytes={first}-{last}")
    assert _status(got) == 206
    assert got["ContentRange"] == f"bytes {first}-{last}/{len(whole)}"
    assert got["Body"].read() == whole[first:last + 1]


def test_get_object_suffix_range_of_multipart_object(s3, mbucket, three_part_object):
    whole = b"".join(three_part_object)
    got = s3.get_object(Bucket=mbucket, Key="obj", Range="bytes=-150")
    assert got["Body"].read() == whole[-150:]
    got = s3.get_object(Bucket=mbucket, Key="obj", Range=f"bytes={PART + 5}-")
    assert got["Body"].read() == whole[PART + 5:]


# -- checksums --------------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256"])
def test_complete_multipart_upload_composite_checksum(s3, mbucket, algorithm):
    field = f"Checksum{algorithm}"
    parts = [data(PART, 131), data(PART, 132), data(777, 133)]
    created = s3.create_multipart_upload(Bucket=mbucket, Key="k", ChecksumAlgorithm=algorithm)
    assert created["ChecksumAlgorithm"] == algorithm
    upload_id, done = created["UploadId"], []
    for number, body in enumerate(parts, start=1):
        resp = s3.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=number, Body=body,
                              ChecksumAlgorithm=algorithm)
        assert resp[field] == checksum_b64(algorithm, body)
        done.append({"PartNumber": number, "ETag": resp["ETag"], field: resp[field]})
    listed = s3.list_parts(Bucket=mbucket, Key="k", UploadId=upload_id)["Parts"]
    assert [p[field] for p in listed] == [checksum_b64(algorithm, b) for b in parts]

    expected = composite_checksum(algorithm, parts)
    out = complete(s3, mbucket, "k", upload_id, done)
    assert out[field] == expected
    assert out["ChecksumType"] == "COMPOSITE"
    assert out["ETag"] == f'"{multipart_etag(parts)}"'
    head = s3.head_object(Bucket=mbucket, Key="k", ChecksumMode="ENABLED")
    assert head[field] == expected
    assert _get(s3, mbucket, "k") == b"".join(parts)


def test_complete_multipart_upload_part_checksum_mismatch(s3, mbucket):
    parts = [data(PART, 134), data(10, 135)]
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="k", ChecksumAlgorithm="CRC32")["UploadId"]
    done = []
    for number, body in enumerate(parts, start=1):
        resp = s3.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=number, Body=body,
                              ChecksumAlgorithm="CRC32")
        done.append({"PartNumber": number, "ETag": resp["ETag"], "ChecksumCRC32": resp["ChecksumCRC32"]})
    done[1]["ChecksumCRC32"] = checksum_b64("CRC32", b"not the part")
    with pytest.raises(ClientError) as exc:
        complete(s3, mbucket, "k", upload_id, done)
    assert_client_error(exc, "InvalidPart", 400)


@pytest.mark.parametrize("algorithm", ["CRC64NVME", "CRC32", "CRC32C"])
def test_complete_multipart_upload_full_object_checksum(s3, mbucket, algorithm):
    field = f"Checksum{algorithm}"
    parts = [data(PART, 141), data(PART + 1, 142), data(4321, 143)]
    whole = b"".join(parts)
    created = s3.create_multipart_upload(Bucket=mbucket, Key="k", ChecksumAlgorithm=algorithm,
                                         ChecksumType="FULL_OBJECT")
    assert created["ChecksumType"] == "FULL_OBJECT"
    upload_id, done = created["UploadId"], []
    for number, body in enumerate(parts, start=1):
        resp = s3.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=number, Body=body,
                              ChecksumAlgorithm=algorithm)
        assert resp[field] == checksum_b64(algorithm, body)
        done.append({"PartNumber": number, "ETag": resp["ETag"], field: resp[field]})
    expected = checksum_b64(algorithm, whole)  # the CRC of all the bytes: no "-N"
    out = complete(s3, mbucket, "k", upload_id, done)
    assert out[field] == expected
    assert out["ChecksumType"] == "FULL_OBJECT"
    head = s3.head_object(Bucket=mbucket, Key="k", ChecksumMode="ENABLED")
    assert head[field] == expected
    assert _get(s3, mbucket, "k") == whole


def test_create_multipart_upload_crc64nvme_defaults_to_full_object(s3, mbucket):
    parts = [data(PART, 144), data(1, 145)]
    created = s3.create_multipart_upload(Bucket=mbucket, Key="k", ChecksumAlgorithm="CRC64NVME")
    assert created["ChecksumType"] == "FULL_OBJECT"
    upload_id, done = created["UploadId"], []
    for number, body in enumerate(parts, start=1):
        resp = s3.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=number, Body=body,
                              ChecksumAlgorithm="CRC64NVME")
        done.append({"PartNumber": number, "ETag": resp["ETag"], "ChecksumCRC64NVME": resp["ChecksumCRC64NVME"]})
    out = complete(s3, mbucket, "k", upload_id, done)
    assert out["ChecksumCRC64NVME"] == checksum_b64("CRC64NVME", b"".join(parts))


def test_complete_multipart_upload_full_object_checksum_given_by_client(s3, mbucket):
    """A client may send the whole object's CRC with CompleteMultipartUpload
    (x-amz-checksum-crc64nvme, x-amz-checksum-type: FULL_OBJECT); it is the object's
    checksum, not one of the small XML request body."""
    parts = [data(PART, 146), data(2000, 147)]
    whole = b"".join(parts)
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="k", ChecksumAlgorithm="CRC64NVME",
                                           ChecksumType="FULL_OBJECT")["UploadId"]
    done = []
    for number, body in enumerate(parts, start=1):
        resp = s3.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=number, Body=body,
                              ChecksumAlgorithm="CRC64NVME")
        done.append({"PartNumber": number, "ETag": resp["ETag"], "ChecksumCRC64NVME": resp["ChecksumCRC64NVME"]})
    expected = checksum_b64("CRC64NVME", whole)
    out = complete(s3, mbucket, "k", upload_id, done, ChecksumCRC64NVME=expected, ChecksumType="FULL_OBJECT")
    assert out["ChecksumCRC64NVME"] == expected
    assert _get(s3, mbucket, "k") == whole


@pytest.mark.parametrize("algorithm,checksum_type", [("CRC32", "COMPOSITE"), ("CRC64NVME", "FULL_OBJECT")])
def test_head_object_checksum_mode_returns_checksum_type(s3, mbucket, algorithm, checksum_type):
    field = f"Checksum{algorithm}"
    parts = [data(PART, 148), data(5, 149)]
    upload_id = s3.create_multipart_upload(Bucket=mbucket, Key="k", ChecksumAlgorithm=algorithm,
                                           ChecksumType=checksum_type)["UploadId"]
    done = []
    for number, body in enumerate(parts, start=1):
        resp = s3.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=number, Body=body,
                              ChecksumAlgorithm=algorithm)
        done.append({"PartNumber": number, "ETag": resp["ETag"], field: resp[field]})
    complete(s3, mbucket, "k", upload_id, done)
    head = s3.head_object(Bucket=mbucket, Key="k", ChecksumMode="ENABLED")
    assert head["ChecksumType"] == checksum_type


# -- real clients ------------------------------------------------------------------------------------

def test_upload_file_transfer_manager_concurrent(s3, mbucket, tmp_path):
    body = os.urandom(40 * MiB + 12345)
    src, dst = tmp_path / "up.bin", tmp_path / "down.bin"
    src.write_bytes(body)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=8)
    s3.upload_file(str(src), mbucket, "tm/big.bin", Config=config)
    chunks = [body[i:i + 5 * MiB] for i in range(0, len(body), 5 * MiB)]
    head = s3.head_object(Bucket=mbucket, Key="tm/big.bin")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == f'"{multipart_etag(chunks)}"'
    s3.download_file(mbucket, "tm/big.bin", str(dst), Config=config)
    assert file_md5(dst) == md5_hex(body)
    assert dst.read_bytes() == body
    assert open_uploads(s3, mbucket) == []


def test_aws_cli_s3_cp_multipart_up_and_down(server, s3, mbucket, tmp_path):
    body = os.urandom(20_000_000)
    src, dst = tmp_path / "up.bin", tmp_path / "down.bin"
    src.write_bytes(body)
    check_ok(aws_cli(server.endpoint, "s3", "cp", str(src), f"s3://{mbucket}/cli/file.bin"))
    chunk = 8 * MiB  # the CLI's default multipart_chunksize
    expected = multipart_etag([body[i:i + chunk] for i in range(0, len(body), chunk)])
    head = s3.head_object(Bucket=mbucket, Key="cli/file.bin")
    assert head["ETag"] == f'"{expected}"'
    assert head["ContentLength"] == len(body)
    check_ok(aws_cli(server.endpoint, "s3", "cp", f"s3://{mbucket}/cli/file.bin", str(dst)))
    assert dst.read_bytes() == body
    assert open_uploads(s3, mbucket) == []


# -- lifecycle of part blobs ---------------------------------------------------------------------------

def _multipart_object(s3, bucket, key, seed) -> bytes:
    parts = [data(PART, seed), data(300, seed + 1)]
    upload_id, done = upload_parts(s3, bucket, key, parts)
    complete(s3, bucket, key, upload_id, done)
    return b"".join(parts)


def test_put_object_over_multipart_object_removes_part_blobs(server, s3, mbucket):
    before = _blobs(server)
    _multipart_object(s3, mbucket, "k", 151)
    assert len(_blobs(server) - before) == _object_blobs(server, 2)
    s3.put_object(Bucket=mbucket, Key="k", Body=b"small and inline")
    assert len(_blobs(server) - before) == (0 if server.inline_max_size else 1)
    assert _get(s3, mbucket, "k") == b"small and inline"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=mbucket, Key="k", PartNumber=2)
    assert_client_error(exc, "InvalidPartNumber", 416)


def test_complete_multipart_upload_over_multipart_object_removes_old_part_blobs(server, s3, mbucket):
    before = _blobs(server)
    _multipart_object(s3, mbucket, "k", 152)
    newer = _multipart_object(s3, mbucket, "k", 154)
    assert len(_blobs(server) - before) == _object_blobs(server, 2)
    assert _get(s3, mbucket, "k") == newer


def test_delete_object_multipart_removes_part_blobs(server, s3, mbucket):
    before = _blobs(server)
    _multipart_object(s3, mbucket, "k", 156)
    assert len(_blobs(server) - before) == _object_blobs(server, 2)
    assert _status(s3.delete_object(Bucket=mbucket, Key="k")) == 204
    assert _blobs(server) == before
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=mbucket, Key="k")
    assert client_status(exc) == 404


def test_delete_objects_multipart_removes_part_blobs(server, s3, mbucket):
    before = _blobs(server)
    _multipart_object(s3, mbucket, "a", 158)
    _multipart_object(s3, mbucket, "b", 160)
    assert len(_blobs(server) - before) == 2 * _object_blobs(server, 2)
    resp = s3.delete_objects(Bucket=mbucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
    assert sorted(d["Key"] for d in resp["Deleted"]) == ["a", "b"]
    assert _blobs(server) == before


def test_copy_object_multipart_source_is_independent(server, s3, mbucket):
    before = _blobs(server)
    body = _multipart_object(s3, mbucket, "src", 162)
    s3.copy_object(Bucket=mbucket, Key="dst", CopySource={"Bucket": mbucket, "Key": "src"})
    assert _get(s3, mbucket, "dst") == body
    s3.delete_object(Bucket=mbucket, Key="src")
    assert _get(s3, mbucket, "dst") == body
    s3.delete_object(Bucket=mbucket, Key="dst")
    assert _blobs(server) == before


# -- permissions ---------------------------------------------------------------------------------------

def test_upload_part_other_user_access_denied(s3, s3_other, mbucket):
    upload_id, done = upload_parts(s3, mbucket, "k", [b"mine"])
    with pytest.raises(ClientError) as exc:
        s3_other.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=2, Body=b"theirs")
    assert_client_error(exc, "AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        s3_other.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"theirs")
    assert_client_error(exc, "AccessDenied", 403)
    parts = s3.list_parts(Bucket=mbucket, Key="k", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in parts] == [(1, done[0]["ETag"])]


def test_multipart_operations_other_user_access_denied(s3, s3_other, mbucket):
    upload_id, done = upload_parts(s3, mbucket, "k", [b"mine"])
    calls = [
        lambda: s3_other.create_multipart_upload(Bucket=mbucket, Key="theirs"),
        lambda: s3_other.list_parts(Bucket=mbucket, Key="k", UploadId=upload_id),
        lambda: s3_other.list_multipart_uploads(Bucket=mbucket),
        lambda: complete(s3_other, mbucket, "k", upload_id, done),
        lambda: s3_other.abort_multipart_upload(Bucket=mbucket, Key="k", UploadId=upload_id),
    ]
    for call in calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert_client_error(exc, "AccessDenied", 403)
    assert open_uploads(s3, mbucket) == [("k", upload_id)]
