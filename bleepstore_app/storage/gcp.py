"""Blobs as objects in a Google Cloud Storage bucket, via google-cloud-storage.

A location is a fresh uuid hex; its object is ``<prefix><location>`` in the
backing bucket. Every write creates a new object name (and asks GCS for
``ifGenerationMatch=0``: the name must be new), so the object behind a location
never changes and metadata decides which one an object is.

- put: the body is read one ``chunk_size`` chunk at a time (a multiple of
  256 KiB, as GCS requires of every non-final chunk). A body shorter than one
  chunk is one simple upload. A longer one goes through a resumable upload
  session: each chunk is PUT with ``Content-Range: bytes a-b/*`` and the session
  is finalized (``bytes */<size>``, or the short last chunk with its total) only
  after the source ended, which is when BleepStore's verifying reader raises on
  a bad digest. An unfinalized session never becomes an object; on any failure
  we also cancel it (DELETE on the session URL). At most one chunk is in memory
  per write.
- Retries: every call goes through google-api-core's Retry (the library's
  retryable errors: 408/429/5xx, connection resets, timeouts), for at most
  RETRY_SECONDS. A resumable chunk is held as bytes, so a failed PUT is retried
  by asking the session how much it persisted (``bytes */*``, answered by a 308
  with a Range header) and resending the rest of that chunk; the request
  stream is never rewound.
- open/iter_range: open starts one GET of the whole object (retried until its
  answer starts) and takes the size and generation from that answer's headers,
  so a blob deleted after open (a concurrent overwrite) still streams in full.
  iter_range(0, end) reads that stream up to ``end``; any other range closes it
  and issues a ranged GET pinned to the same generation. Bodies are streamed in
  1 MiB pieces, never buffered whole; a stream that breaks midway raises
  StorageUnavailable.
- copy: server-side rewrite (looped while GCS returns a rewrite token).
- compose: GCS compose, which takes at most 32 sources: parts are composed in
  groups of 32 into intermediate objects (named like any location, so the
  orphan sweep finds them after a crash), level by level, into the final
  object; intermediates are deleted afterwards, also on failure.
- copy_range: GCS has no ranged server-side copy, so the base class streams the
  range through this process.
- ETags and checksums: BleepStore computes its own; GCS's md5Hash is never used
  (composite objects have none) and the library's CRC32C checks are off.
- recover: nothing to do: an interrupted resumable upload is never visible and
  GCS expires its session after a week; there is nothing listable to clean.

Credentials: Application Default Credentials; with a custom ``endpoint`` (an
emulator) and no ADC, anonymous credentials. With STORAGE_EMULATOR_HOST set the
library picks the endpoint and anonymous credentials itself.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import logging
import os
import threading
import uuid
from typing import Any, Iterator

from .base import (BlobNotFound, BlobReader, Readable, StorageBackend, StorageError, StorageThrottled,
                   StorageTimeout, StorageUnavailable, StoredBlob, read_full)

log = logging.getLogger(__name__)

READ_CHUNK = 1024 * 1024
MAX_COMPOSE = 32            # GCS compose accepts 1..32 sources
RETRY_SECONDS = 30.0        # total time spent retrying one call
TIMEOUT = (10.0, 60.0)      # (connect, read) seconds per HTTP request
CONTENT_TYPE = "application/octet-stream"
_HEX = frozenset("0123456789abcdef")


def _is_location(name: str) -> bool:
    return len(name) == 32 and set(name) <= _HEX


def _translate(exc: Exception, location: str = "") -> StorageError:
    """An exception of google-cloud-storage, google-auth or requests as a StorageError."""
    import requests
    import urllib3
    from google.api_core import exceptions as gx
    from google.auth import exceptions as ax

    if isinstance(exc, gx.RetryError) and exc.cause is not None:
        return _translate(exc.cause, location)
    message = f"GCS backend: {exc}"
    if isinstance(exc, gx.NotFound):
        return BlobNotFound(location)
    if isinstance(exc, gx.TooManyRequests):
        return StorageThrottled(message)
    if isinstance(exc, (gx.GatewayTimeout, gx.RetryError, requests.Timeout, urllib3.exceptions.TimeoutError,
                        TimeoutError)):
        return StorageTimeout(message)
    if isinstance(exc, (gx.ServerError, requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                        urllib3.exceptions.HTTPError, http.client.HTTPException, ax.TransportError, OSError)):
        return StorageUnavailable(message)
    return StorageError(message)


@contextlib.contextmanager
def _errors(location: str = "") -> Iterator[None]:
    """Let our own errors through; translate everything the SDK raises."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        raise _translate(exc, location) from exc


def _raise_for_status(response: Any, *expected: int) -> None:
    if response.status_code not in expected:
        from google.api_core import exceptions as gx
        raise gx.from_http_response(response)


def _persisted(response: Any) -> int:
    """Bytes a resumable session holds, from a 308's ``Range: bytes=0-N``."""
    header = response.headers.get("Range", "")
    return int(header.rsplit("-", 1)[1]) + 1 if header else 0


class GcpBlobReader(BlobReader):
    """One GET of the whole object, started at open; other ranges get their own GET."""

    def __init__(self, backend: "GcpStorage", url: str, location: str) -> None:
        self._backend = backend
        self._url = url
        self._location = location
        self._response: Any = None
        with _errors(location):
            response = backend.retry(self._get)(None, None)
        try:
            size, generation = _size_and_generation(response)
            if generation and "generation=" not in url:
                # Later ranged GETs read the very object this GET reads.
                self._url += ("&" if "?" in url else "?") + f"generation={generation}"
            if size is None:
                # No plain Content-Length (not seen from GCS or fake-gcs-server for
                # identity-encoded objects): ask the metadata of the same generation.
                # The GET has already begun, but a delete between the two calls
                # makes this lookup fail.
                size = backend._size(location, generation)
        except BaseException:
            response.close()
            raise
        self._response = response
        self.size = size

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        try:
            if start >= end:
                return
            response, self._response = self._response, None
            if response is None or start != 0:
                if response is not None:
                    response.close()
                with _errors(self._location):
                    response = self._backend.retry(self._get)(start, end)
            self._response = response
            pos = start
            with _errors(self._location):
                for chunk in response.iter_content(READ_CHUNK):
                    if pos + len(chunk) > end:  # the whole-object stream, read only up to end
                        chunk = chunk[:end - pos]
                    pos += len(chunk)
                    if chunk:
                        yield chunk
                    if pos >= end:
                        break
            if pos != end:
                raise StorageError(f"GCS backend: {self._location} ended {end - pos} bytes early")
        finally:
            self.close()

    def _get(self, start: int | None, end: int | None) -> Any:
        """A streaming GET of [start, end), or of the whole object (start None)."""
        headers = {"Accept-Encoding": "identity"}
        expected: tuple[int, ...] = (200,)
        if start is not None:
            headers["Range"] = f"bytes={start}-{end - 1}"
            expected = (206, 200) if (start, end) == (0, self.size) else (206,)
        response = self._backend.client._http.get(self._url, headers=headers, stream=True, timeout=TIMEOUT)
        try:
            _raise_for_status(response, *expected)
        except Exception:
            response.close()
            raise
        return response

    def close(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            response.close()


def _size_and_generation(response: Any) -> tuple[int | None, str | None]:
    """The object's size and generation from the headers of a whole-object GET."""
    headers = response.headers
    generation = headers.get("x-goog-generation")
    encoding = headers.get("Content-Encoding", "identity").lower()
    length = headers.get("Content-Length") if encoding == "identity" else None
    if length is None and headers.get("x-goog-stored-content-encoding", "identity").lower() == "identity":
        length = headers.get("x-goog-stored-content-length")
    try:
        return (int(length) if length is not None else None), generation
    except ValueError:
        return None, generation


class GcpStorage(StorageBackend):
    name = "gcp"
    composes = True

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.prefix = settings.prefix
        self._lock = threading.Lock()
        self._state: tuple[int, Any, Any] | None = None  # (pid, client, bucket)

    # -- the client, made on first use in each process ----------------------

    def _connect(self) -> tuple[Any, Any]:
        """(client, bucket); a process never uses a client (and its pooled
        connections) that it inherited across a fork."""
        state = self._state
        if state is None or state[0] != os.getpid():
            with self._lock:
                state = self._state
                if state is None or state[0] != os.getpid():
                    with _errors():
                        client = self._make_client()
                    state = self._state = (os.getpid(), client, client.bucket(self.settings.bucket))
        return state[1], state[2]

    @property
    def client(self) -> Any:
        return self._connect()[0]

    @property
    def bucket(self) -> Any:
        return self._connect()[1]

    def _make_client(self) -> Any:
        from google.cloud import storage
        from requests.adapters import HTTPAdapter

        s = self.settings
        client = storage.Client(project=s.project or None, credentials=self._credentials(),
                                client_options={"api_endpoint": s.endpoint} if s.endpoint else None)
        # A pool per host (storage API, token host), each as large as the number of
        # greenlets we expect at once (requests' default is 10).
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=s.max_pool_connections)
        client._http.mount("https://", adapter)
        client._http.mount("http://", adapter)
        return client

    def _credentials(self) -> Any:
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            return None  # the library then talks to the emulator with anonymous credentials
        import google.auth
        from google.auth.credentials import AnonymousCredentials
        from google.auth.exceptions import DefaultCredentialsError
        from google.cloud import storage
        try:
            credentials, _ = google.auth.default(scopes=storage.Client.SCOPE)
            return credentials
        except DefaultCredentialsError:
            if self.settings.endpoint:
                return AnonymousCredentials()  # an emulator: nothing to authenticate
            raise

    @property
    def retry(self) -> Any:
        """The library's retry policy (its retryable errors), bounded to RETRY_SECONDS."""
        from google.cloud.storage.retry import DEFAULT_RETRY
        return DEFAULT_RETRY.with_timeout(RETRY_SECONDS)

    def _name(self, location: str) -> str:
        if not _is_location(location):
            raise BlobNotFound(location)
        return self.prefix + location

    def _blob(self, location: str) -> Any:
        return self.bucket.blob(self._name(location))

    # -- writing -----------------------------------------------------------

    def put(self, source: Readable) -> StoredBlob:
        size = self.settings.chunk_size
        location = uuid.uuid4().hex
        blob = self._blob(location)
        chunk = read_full(source, size)
        if len(chunk) < size:  # the whole body: one simple upload
            self._upload_simple(blob, chunk, location)
            return StoredBlob(location, len(chunk))
        with _errors(location):
            url = blob.create_resumable_upload_session(
                content_type=CONTENT_TYPE, client=self.client, checksum=None, if_generation_match=0,
                timeout=TIMEOUT, retry=self.retry)
        offset = 0
        try:
            while len(chunk) == size:
                self._send(url, chunk, offset, None, location)
                offset += len(chunk)
                chunk = b""  # drop the sent chunk before reading the next one
                chunk = read_full(source, size)
            # The source has ended (without raising): the short last chunk, or
            # an empty request, finalizes the object.
            self._send(url, chunk, offset, offset + len(chunk), location)
        except BaseException:
            self._cancel(url)
            raise
        return StoredBlob(location, offset + len(chunk))

    def _upload_simple(self, blob: Any, data: bytes, location: str) -> None:
        from google.api_core.exceptions import PreconditionFailed
        try:
            with _errors(location):
                blob.upload_from_string(data, content_type=CONTENT_TYPE, client=self.client, if_generation_match=0,
                                        checksum=None, timeout=TIMEOUT, retry=self.retry)
        except StorageError as exc:
            # The name is fresh: if it exists, a retried request found our own
            # first attempt, which succeeded but whose answer was lost.
            if not isinstance(exc.__cause__, PreconditionFailed):
                raise

    def _send(self, url: str, chunk: bytes, offset: int, total: int | None, location: str) -> None:
        """PUT ``chunk`` at ``offset`` of a resumable session; ``total`` (the
        object's size) marks the final request. A retry first asks the session
        how much it persisted and sends the rest of the chunk."""
        from google.api_core.exceptions import ServiceUnavailable
        session = self.client._http
        end = offset + len(chunk)
        last = "*" if total is None else str(total)
        pos, retrying = offset, False

        def attempt() -> None:
            nonlocal pos, retrying
            if retrying:  # after a failure: ask the session how far it got
                response = session.put(url, headers={"Content-Range": "bytes */*"}, timeout=TIMEOUT)
                if response.status_code in (200, 201):
                    return  # the final request had arrived: the object exists
                _raise_for_status(response, 308)
                pos = max(offset, _persisted(response))
            retrying = True
            while pos < end or total is not None:
                body = chunk if pos == offset else chunk[pos - offset:]
                span = f"bytes {pos}-{end - 1}/{last}" if body else f"bytes */{last}"
                response = session.put(url, data=body, headers={"Content-Range": span}, timeout=TIMEOUT)
                if total is not None and response.status_code in (200, 201):
                    return
                _raise_for_status(response, 308)
                # GCS may persist less than it was sent: go on from where it stands.
                persisted = _persisted(response)
                if persisted <= pos:  # no progress: back off and retry
                    raise ServiceUnavailable(f"resumable upload of {location} stalled at byte {persisted}")
                pos = persisted

        with _errors(location):
            self.retry(attempt)()

    def _cancel(self, url: str) -> None:
        """Best effort: an unfinalized session is invisible anyway and expires."""
        try:
            self.client._http.delete(url, timeout=TIMEOUT)  # GCS answers 499
        except Exception as exc:
            log.warning("GCS backend: cancelling a resumable upload failed: %s", exc)

    def copy(self, location: str) -> StoredBlob:
        source = self._blob(location)
        new = uuid.uuid4().hex
        dest = self._blob(new)
        with _errors(location):
            token, _, total = dest.rewrite(source, if_generation_match=0, timeout=TIMEOUT, retry=self.retry)
            while token is not None:
                token, _, total = dest.rewrite(source, token=token, if_generation_match=0, timeout=TIMEOUT,
                                               retry=self.retry)
        return StoredBlob(new, total)

    def compose(self, locations: list[str]) -> StoredBlob:
        if not locations:
            return self.put(_Empty())
        names = [self._name(location) for location in locations]
        intermediates: list[str] = []
        try:
            while len(names) > MAX_COMPOSE:
                level = []
                for i in range(0, len(names), MAX_COMPOSE):
                    group = names[i:i + MAX_COMPOSE]
                    if len(group) == 1:
                        level.append(group[0])
                        continue
                    intermediate = self.prefix + uuid.uuid4().hex
                    intermediates.append(intermediate)  # before the call: a lost answer may hide a success
                    self._compose_into(intermediate, group)
                    level.append(intermediate)
                names = level
            location = uuid.uuid4().hex
            size = self._compose_into(self.prefix + location, names)
            return StoredBlob(location, size)
        finally:
            for name in intermediates:
                self._delete_quietly(name)

    def _compose_into(self, name: str, sources: list[str]) -> int:
        from google.api_core.exceptions import ServerError
        dest = self.bucket.blob(name)
        dest.content_type = CONTENT_TYPE
        blobs = [self.bucket.blob(source) for source in sources]

        def attempt() -> None:
            try:
                dest.compose(blobs, if_generation_match=0, timeout=TIMEOUT, retry=None)
            except ServerError:
                # fake-gcs-server answers a missing source with 500 (GCS: 404):
                # report a missing part as such instead of retrying.
                self._require(sources)
                raise

        with _errors():
            self.retry(attempt)()
        return dest.size

    def _require(self, names: list[str]) -> None:
        for name in names:
            if self.bucket.get_blob(name, timeout=TIMEOUT, retry=None) is None:
                raise BlobNotFound(name[len(self.prefix):])

    # -- reading and deleting ----------------------------------------------

    def open(self, location: str) -> GcpBlobReader:
        # Without loaded metadata the library builds the media URL from the name
        # (the URL its own downloads use); the reader pins the generation it got.
        url = self._blob(location)._get_download_url(self.client)
        return GcpBlobReader(self, url, location)

    def _size(self, location: str, generation: str | None) -> int:
        with _errors(location):
            blob = self.bucket.get_blob(self._name(location), generation=int(generation) if generation else None,
                                        timeout=TIMEOUT, retry=self.retry)
        if blob is None:
            raise BlobNotFound(location)
        return blob.size or 0

    def delete(self, location: str) -> None:
        if _is_location(location):
            with _errors(location):
                self._delete_name(self.prefix + location)

    def _delete_name(self, name: str) -> None:
        from google.api_core.exceptions import NotFound
        try:
            self.bucket.blob(name).delete(timeout=TIMEOUT, retry=self.retry)
        except NotFound:
            pass

    def _delete_quietly(self, name: str) -> None:
        try:
            with _errors():
                self._delete_name(name)
        except StorageError as exc:  # left for the orphan sweep
            log.warning("GCS backend: could not delete intermediate %s: %s", name, exc)

    # -- recovery, the orphan sweep, readiness ------------------------------

    def recover(self) -> None:
        """Nothing to do: interrupted resumable uploads are invisible, unlistable
        and expire after a week; leftover intermediates are ordinary locations
        that the orphan sweep removes."""

    def iter_locations(self, older_than_seconds: float) -> Iterator[str]:
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than_seconds)
        with _errors():
            blobs = self.client.list_blobs(self.bucket, prefix=self.prefix, timeout=TIMEOUT,
                                           retry=self.retry,
                                           fields="items(name,timeCreated,updated),nextPageToken")
            for blob in blobs:
                location = blob.name[len(self.prefix):]
                created = blob.time_created or blob.updated
                if _is_location(location) and created is not None and created < cutoff:
                    yield location

    def check(self) -> None:
        """List at most one object: needs only object permissions (a role like
        Storage Object Admin), which bucket metadata reads would not. No retries:
        readiness should answer now."""
        with _errors():
            list(self.client.list_blobs(self.bucket, prefix=self.prefix, max_results=1,
                                        timeout=(5.0, 10.0), retry=None))


class _Empty:
    def read(self, n: int = -1) -> bytes:
        return b""
