"""Blobs as objects in an S3 bucket (AWS or any S3-compatible service), via boto3.

A location is a fresh uuid hex; its object is ``<prefix><location>`` in the
backing bucket. Every write creates a new object, so the object behind a
location never changes and metadata decides which one an object is.

- put: the body is read one ``part_size`` chunk at a time. A body that fits in
  one chunk is one PutObject; a longer one is a multipart upload of those
  chunks, completed only after the last read (which is when BleepStore's
  verifying reader raises on a bad digest; the upload is then aborted, so no
  object ever becomes visible). Retries: each chunk is held as bytes, so boto3
  retries a failed PutObject/UploadPart by resending that chunk; the client's
  request stream is never rewound. At most one chunk is in memory per write.
- open/iter_range: one GET started at open (so a blob deleted after the reader
  opened it still streams), or a ranged GET for a later range; read in 1 MiB
  chunks.
- copy, copy_range, compose: server-side (CopyObject, or a multipart upload
  made of UploadPartCopy ranges); bytes never pass through BleepStore.
- recover: multipart uploads under the prefix older than a day are aborted
  (a crashed put leaves one; younger ones may belong to a live node).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import threading
import uuid
from typing import Iterator

from .base import (BlobNotFound, BlobReader, Readable, StorageBackend, StorageError, StorageThrottled,
                   StorageTimeout, StorageUnavailable, StoredBlob, read_full)

READ_CHUNK = 1024 * 1024
MAX_COPY_PART = 5 * 1024 ** 3  # UploadPartCopy and CopyObject limit
STALE_UPLOAD_SECONDS = 24 * 3600
_NOT_FOUND = {"NoSuchKey", "404", "NotFound", "NoSuchUpload"}
_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests",
              "TooManyRequestsException", "503"}
_TIMEOUT = {"RequestTimeout", "RequestTimeoutException"}


@contextlib.contextmanager
def _translate(location: str = ""):
    """botocore's exceptions as the backend's StorageError family."""
    from botocore import exceptions as bx
    try:
        yield
    except bx.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = f"S3 backend: {code or status} {error.get('Message', '')}".strip()
        if code in _NOT_FOUND or status == 404:
            raise BlobNotFound(location) from exc
        if code in _THROTTLED or status == 429:
            raise StorageThrottled(message) from exc
        if code in _TIMEOUT:
            raise StorageTimeout(message) from exc
        if status >= 500:
            raise StorageUnavailable(message) from exc
        raise StorageError(message) from exc
    except (bx.ReadTimeoutError, bx.ConnectTimeoutError) as exc:
        raise StorageTimeout(f"S3 backend: {exc}") from exc
    except (bx.EndpointConnectionError, bx.ConnectionError, bx.HTTPClientError) as exc:
        raise StorageUnavailable(f"S3 backend: {exc}") from exc
    except bx.BotoCoreError as exc:
        raise StorageError(f"S3 backend: {exc}") from exc


class S3BlobReader(BlobReader):
    def __init__(self, backend: "AwsStorage", key: str, location: str) -> None:
        self._backend, self._key, self._location = backend, key, location
        with _translate(location):
            response = backend.client.get_object(Bucket=backend.bucket, Key=key)
        self._body = response["Body"]
        self.size = response["ContentLength"]

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        try:
            if start >= end:
                return
            body, self._body = self._body, None
            if body is None or start != 0:
                if body is not None:
                    body.close()
                with _translate(self._location):
                    body = self._backend.client.get_object(
                        Bucket=self._backend.bucket, Key=self._key, Range=f"bytes={start}-{end - 1}")["Body"]
            self._body = body
            remaining = end - start
            while remaining:
                with _translate(self._location):
                    chunk = body.read(min(READ_CHUNK, remaining))
                if not chunk:
                    raise StorageError("S3 backend: blob shorter than its recorded size")
                remaining -= len(chunk)
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            body.close()


class AwsStorage(StorageBackend):
    name = "aws"
    composes = True

    def __init__(self, settings) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = settings.prefix
        self._client = None
        self._lock = threading.Lock()

    @property
    def client(self):
        """One boto3 client per process, made on first use (after gevent's patching)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self):
        import boto3
        from botocore.config import Config
        s = self.settings
        config = Config(
            max_pool_connections=s.max_pool_connections,
            s3={"addressing_style": "path" if s.path_style else "auto"},
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=10, read_timeout=120,
            # ETags and checksums are BleepStore's own; no second pass over each chunk.
            request_checksum_calculation="when_required", response_checksum_validation="when_required")
        return boto3.session.Session().client("s3", region_name=s.region, endpoint_url=s.endpoint_url or None,
                                              config=config)

    def _key(self, location: str) -> str:
        if len(location) != 32 or not location.isalnum():
            raise BlobNotFound(location)
        return self.prefix + location

    def _new(self) -> tuple[str, str]:
        location = uuid.uuid4().hex
        return location, self.prefix + location

    # -- writing -----------------------------------------------------------

    def put(self, source: Readable) -> StoredBlob:
        part_size = self.settings.part_size
        location, key = self._new()
        chunk = read_full(source, part_size)
        if len(chunk) < part_size:  # the whole body (the source has ended and verified it)
            with _translate(location):
                self.client.put_object(Bucket=self.bucket, Key=key, Body=chunk)
            return StoredBlob(location, len(chunk))
        with _translate(location):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        try:
            parts, size = [], 0
            while chunk:
                number = len(parts) + 1
                with _translate(location):
                    etag = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                   PartNumber=number, Body=chunk)["ETag"]
                parts.append({"PartNumber": number, "ETag": etag})
                size += len(chunk)
                del chunk  # one part in memory at a time, not two
                chunk = read_full(source, part_size)
            with _translate(location):
                self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                      MultipartUpload={"Parts": parts})
        except BaseException:
            self._abort(key, upload_id)
            raise
        return StoredBlob(location, size)

    def _abort(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def copy(self, location: str) -> StoredBlob:
        size = self._size(location)
        if size > MAX_COPY_PART:
            return self._copy_ranges([(location, 0, size)])
        new, key = self._new()
        with _translate(location):
            self.client.copy_object(Bucket=self.bucket, Key=key,
                                    CopySource={"Bucket": self.bucket, "Key": self._key(location)})
        return StoredBlob(new, size)

    def copy_range(self, location: str, start: int, end: int) -> StoredBlob:
        return self._copy_ranges([(location, start, end)])

    def compose(self, locations: list[str]) -> StoredBlob | None:
        return self._copy_ranges([(loc, 0, self._size(loc)) for loc in locations])

    def _size(self, location: str) -> int:
        with _translate(location):
            return self.client.head_object(Bucket=self.bucket, Key=self._key(location))["ContentLength"]

    def _copy_ranges(self, ranges: list[tuple[str, int, int]]) -> StoredBlob:
        """A new object made of byte ranges of existing blobs, assembled inside S3
        by a multipart upload of UploadPartCopy ranges (each at most 5 GiB)."""
        location, key = self._new()
        pieces = [(src, pos, min(pos + MAX_COPY_PART, end)) for src, start, end in ranges
                  for pos in range(start, end, MAX_COPY_PART)]
        if not pieces:  # nothing but empty ranges
            with _translate(location):
                self.client.put_object(Bucket=self.bucket, Key=key, Body=b"")
            return StoredBlob(location, 0)
        with _translate(location):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        try:
            parts = []
            for number, (src, start, end) in enumerate(pieces, 1):
                with _translate(src):
                    result = self.client.upload_part_copy(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                        CopySource={"Bucket": self.bucket, "Key": self._key(src)},
                        CopySourceRange=f"bytes={start}-{end - 1}")
                parts.append({"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]})
            with _translate(location):
                self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                      MultipartUpload={"Parts": parts})
        except BaseException:
            self._abort(key, upload_id)
            raise
        return StoredBlob(location, sum(end - start for _, start, end in pieces))

    # -- reading and deleting ----------------------------------------------

    def open(self, location: str) -> S3BlobReader:
        return S3BlobReader(self, self._key(location), location)

    def delete(self, location: str) -> None:
        try:
            key = self._key(location)
        except BlobNotFound:
            return
        with _translate(location):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    # -- recovery ----------------------------------------------------------

    def recover(self) -> None:
        cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=STALE_UPLOAD_SECONDS)
        with _translate():
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix)
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < cutoff:
                        self._abort(upload["Key"], upload["UploadId"])

    def iter_locations(self, older_than_seconds: float) -> Iterator[str]:
        cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=older_than_seconds)
        with _translate():
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"][len(self.prefix):]
                    if len(name) == 32 and name.isalnum() and item["LastModified"] < cutoff:
                        yield name

    def check(self) -> None:
        with _translate():
            self.client.head_bucket(Bucket=self.bucket)
