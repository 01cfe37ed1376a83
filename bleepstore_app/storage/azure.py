"""Blobs in an Azure Blob Storage container (the "azure" gateway backend).

Mapping
    A location is a fresh ``uuid4().hex``; its block blob is named
    ``settings.prefix + location`` in ``settings.container``. Names are never reused.

    put         Bodies up to one block (``block_size``, default 8 MiB) go up in one
                Put Blob (``upload_blob(overwrite=False)``). Larger bodies are staged
                block by block (``stage_block``) and become visible only with the final
                ``commit_block_list``. If ``source.read`` raises, nothing is committed:
                staged blocks stay uncommitted, invisible to reads and listings, and
                Azure discards them after 7 days. The exception propagates unchanged.
    open        One Get Blob of the whole blob, started at open and streamed (the size
                comes from its Content-Length), so a blob deleted after open (a concurrent
                overwrite) still reads in full. ``iter_range(0, end)`` reads that response
                up to ``end``; any other range closes it and issues one ranged Get Blob.
                The public ``download_blob`` cannot do this: it reads its first response
                (``max_single_get_size``) into memory and fetches the rest with further
                ranged requests, which fail once the blob is deleted. So the GET goes
                through the generated ``download`` operation that ``download_blob`` itself
                calls (``BlobClient._client.blob.download``, private), on the client's own
                pipeline (auth, retries, x-ms-version, our session), with its body left
                streaming. Should a future SDK lack that operation, reads fall back to
                ``download_blob(...).chunks()`` (``_GET_CHUNK`` per request).
    copy        Server-side ``start_copy_from_url`` (the source URL carries a short-lived
                read SAS when we hold the account key, or the client's own SAS), then
                ``get_blob_properties().copy.status`` is polled until "success". With
                only a token credential the copy is built like compose (Put Block From
                URL with a bearer token), since async copies cannot carry one.
    compose     Native block list: every part is staged into the new blob with
                ``stage_block_from_url(source_offset, source_length)`` (parts larger than
                the 4000 MiB block limit become several blocks), then one
                ``commit_block_list``; the committed size is checked against the sum
                of the ranges (a mismatch deletes the new blob). Nothing intermediate
                is ever visible; blocks staged by a failed compose are uncommitted and
                expire after 7 days (an uncommitted block cannot be deleted by itself).
                Source reads are authorised like copy's (SAS, or bearer token).
    copy_range  The same with a single source range (UploadPartCopy), server-side.
    recover     Nothing to do: interrupted writes leave only uncommitted blocks.

Block ids are ``f"{index:08d}{suffix}"`` with a random 8-hex suffix per write, so all
ids of a blob have the same length (Azure requires it); the SDK base64-encodes them.

Retries: the SDK's ExponentialRetry (3 retries, 1 s, 3 s, 5 s) retries each request.
Every request body is a ``bytes`` block already held in memory, so a retry resends it
safely; the caller's source stream is never rewound. Memory: at most one block per put
and about one ``_YIELD`` (1 MiB) per reader, whatever the object size.

gevent: the client (and its requests.Session sized to ``max_pool_connections``) is
created lazily on first use, never at import or construction time.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    IncompleteReadError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

from .base import (
    BlobNotFound,
    BlobReader,
    Readable,
    StorageBackend,
    StorageError,
    StorageThrottled,
    StorageTimeout,
    StorageUnavailable,
    StoredBlob,
    read_full,
)

log = logging.getLogger(__name__)

_GET_CHUNK = 4 * 1024 * 1024       # bytes per ranged GET the SDK holds in memory (fallback reads)
_YIELD = 1024 * 1024               # bytes per chunk read from a response and handed to the caller
_MAX_BLOCK = 4000 * 1024 * 1024    # Azure's largest block (Put Block From URL too)
_SAS_LIFETIME = dt.timedelta(hours=1)
_COPY_TIMEOUT = 3600.0             # give up on a pending server-side copy after this
_LOCATION = re.compile(r"[0-9a-f]{32}\Z")
_OAUTH_SCOPE = "https://storage.azure.com/.default"


# -- error mapping -----------------------------------------------------------

def _translate(exc: AzureError, location: str | None) -> StorageError:
    """The backend error for an SDK exception (see StorageBackend's error classes)."""
    if isinstance(exc, ResourceNotFoundError):
        return BlobNotFound(location or str(exc))
    if isinstance(exc, (ServiceRequestTimeoutError, ServiceResponseTimeoutError)):
        return StorageTimeout(str(exc))
    if isinstance(exc, IncompleteReadError):  # the connection dropped mid-body
        return StorageUnavailable(str(exc))
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        code = getattr(exc, "error_code", None) or ""
        if status == 429 or code == "ServerBusy" or status == 503:
            return StorageThrottled(str(exc))
        if status == 408 or code == "OperationTimedOut":
            return StorageTimeout(str(exc))
        if status >= 500:
            return StorageUnavailable(str(exc))
        return StorageError(str(exc))
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return StorageUnavailable(str(exc))
    return StorageError(str(exc))


@contextmanager
def _errors(location: str | None = None) -> Iterator[None]:
    """Turn SDK exceptions into backend errors; nothing else is touched."""
    try:
        yield
    except AzureError as exc:
        raise _translate(exc, location) from exc


class _BlockIds:
    """Equal-length block ids for one blob: index + a random per-write suffix."""

    def __init__(self) -> None:
        self._suffix = uuid.uuid4().hex[:8]
        self.ids: list[str] = []

    def next(self) -> str:
        block_id = f"{len(self.ids):08d}{self._suffix}"
        self.ids.append(block_id)
        return block_id


# -- reading -----------------------------------------------------------------

class _Stream:
    """An open GET: its body's chunks, the Content-Length if known, and close()."""

    def __init__(self, chunks: Iterator[bytes], length: int | None, response: Any = None) -> None:
        self.chunks, self.length, self._response = chunks, length, response

    def close(self) -> None:
        response, self._response = self._response, None
        internal = getattr(response, "internal_response", None)  # the requests.Response
        if internal is not None:
            internal.close()
        elif response is not None and hasattr(response, "close"):
            response.close()


_fallback_logged = False


def _get(blob: Any, location: str, start: int | None, end: int | None) -> _Stream:
    """One streaming GET of [start, end), or of the whole blob (start None)."""
    global _fallback_logged
    # Private: the generated operation behind download_blob, on the client's pipeline.
    download = getattr(getattr(getattr(blob, "_client", None), "blob", None), "download", None)
    if callable(download):
        try:
            return _pipeline_get(download, location, start, end)
        except TypeError as exc:  # an SDK whose operation takes other arguments
            if not _fallback_logged:
                _fallback_logged = True
                log.warning("Azure backend: streaming Get Blob unavailable (%s); using download_blob", exc)
    elif not _fallback_logged:
        _fallback_logged = True
        log.warning("Azure backend: streaming Get Blob unavailable; using download_blob")
    return _sdk_get(blob, location, start, end)


def _pipeline_get(download: Any, location: str, start: int | None, end: int | None) -> _Stream:
    def keep(pipeline_response: Any, body: Any, headers: Any) -> tuple[Any, Any]:
        return pipeline_response.http_response, body

    with _errors(location):
        response, body = download(range=None if start is None else f"bytes={start}-{end - 1}",
                                  decompress=False, cls=keep)
    stream = _Stream(body, None, response)
    try:
        if start and response.status_code != 206:  # the whole blob instead of the range
            raise StorageError(f"Azure backend: ranged read of {location} answered {response.status_code}")
        length = response.headers.get("Content-Length")
        stream.length = int(length) if length is not None else None
    except BaseException:
        stream.close()
        raise
    return stream


def _sdk_get(blob: Any, location: str, start: int | None, end: int | None) -> _Stream:
    """The public download: its first request (up to _GET_CHUNK) is read at once,
    the rest comes in further ranged requests (pinned to the blob's ETag)."""
    with _errors(location):
        if start is None:
            downloader = blob.download_blob(max_concurrency=1)
        else:
            downloader = blob.download_blob(offset=start, length=end - start, max_concurrency=1)
    return _Stream(downloader.chunks(), downloader.size)


class AzureBlobReader(BlobReader):
    """One GET of the whole blob, started at open; other ranges get their own GET."""

    def __init__(self, blob: Any, location: str) -> None:
        self._blob = blob
        self._location = location
        self._stream: _Stream | None = None
        stream = _get(blob, location, None, None)
        try:
            size = stream.length
            if size is None:  # no Content-Length: the GET has begun, ask the properties
                with _errors(location):
                    size = blob.get_blob_properties().size
        except BaseException:
            stream.close()
            raise
        self._stream = stream
        self.size = size

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        try:
            if end <= start:
                return
            stream, self._stream = self._stream, None
            if stream is None or start != 0:
                if stream is not None:
                    stream.close()
                stream = _get(self._blob, self._location, start, end)
            self._stream = stream
            pos = start
            with _errors(self._location):
                for chunk in stream.chunks:
                    if pos + len(chunk) > end:  # the whole-blob stream, read only up to end
                        chunk = chunk[:end - pos]
                    for at in range(0, len(chunk), _YIELD):
                        yield chunk[at:at + _YIELD]
                    pos += len(chunk)
                    if pos >= end:
                        break
            if pos != end:
                raise StorageError(f"Azure backend: {self._location} ended {end - pos} bytes early")
        finally:
            self.close()

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()


# -- the backend -------------------------------------------------------------

class AzureStorage(StorageBackend):
    name = "azure"
    composes = True

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._service: BlobServiceClient | None = None
        self._container: Any = None
        self._token_credential: Any = None
        self._account_key = self._find_account_key()

    # -- client --------------------------------------------------------------

    def _find_account_key(self) -> str:
        """The shared key, if configured (it signs source-URL SAS tokens)."""
        if self.settings.connection_string:
            parts = dict(p.split("=", 1) for p in self.settings.connection_string.split(";") if "=" in p)
            return parts.get("AccountKey", "")
        return self.settings.account_key

    @property
    def container(self) -> Any:
        """The ContainerClient, created on first use (once per process)."""
        if self._container is None:
            with self._lock:
                if self._container is None:
                    self._service = self._make_service()
                    self._container = self._service.get_container_client(self.settings.container)
        return self._container

    def _make_service(self) -> BlobServiceClient:
        import requests
        from requests.adapters import HTTPAdapter

        s = self.settings
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=s.max_pool_connections)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        block = min(s.block_size, _MAX_BLOCK)
        options = {
            "session": session,
            # Bounded SDK buffers: we hand it whole blocks; streamed reads come off the
            # socket _YIELD at a time (download_blob, the fallback, in _GET_CHUNK).
            "max_single_put_size": block, "max_block_size": block,
            "max_single_get_size": min(_GET_CHUNK, block), "max_chunk_get_size": min(_GET_CHUNK, block),
            "connection_data_block_size": _YIELD,
            # The default backoff starts at 15 s: too slow for a request being served.
            "initial_backoff": 1, "increment_base": 2, "retry_total": 3,
        }
        if s.connection_string:
            return BlobServiceClient.from_connection_string(s.connection_string, **options)
        if s.account_key:
            from azure.core.credentials import AzureNamedKeyCredential
            account = _account_name(s.account_url)
            return BlobServiceClient(s.account_url, credential=AzureNamedKeyCredential(account, s.account_key),
                                     **options)
        if s.sas_token:
            return BlobServiceClient(s.account_url, credential=s.sas_token.lstrip("?"), **options)
        from azure.identity import DefaultAzureCredential
        self._token_credential = DefaultAzureCredential()
        return BlobServiceClient(s.account_url, credential=self._token_credential, **options)

    def _blob(self, location: str) -> Any:
        return self.container.get_blob_client(self.settings.prefix + location)

    def _source(self, location: str) -> tuple[str, dict]:
        """A URL the service itself can read the blob from, plus request kwargs.

        Shared key: append a short-lived read-only SAS. SAS client: its URL already
        carries the token. Token credential: send our bearer token as the source
        authorization (Put Block From URL only)."""
        blob = self._blob(location)
        if self._account_key:
            sas = generate_blob_sas(
                account_name=blob.account_name, container_name=blob.container_name, blob_name=blob.blob_name,
                account_key=self._account_key, permission=BlobSasPermissions(read=True),
                expiry=dt.datetime.now(dt.UTC) + _SAS_LIFETIME,
                start=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))  # tolerate clock skew
            return f"{blob.url}?{sas}", {}
        if self._token_credential is not None:
            token = self._token_credential.get_token(_OAUTH_SCOPE).token
            return blob.url, {"source_authorization": f"Bearer {token}"}
        return blob.url, {}

    # -- writing -------------------------------------------------------------

    def put(self, source: Readable) -> StoredBlob:
        location = uuid.uuid4().hex
        block_size = min(self.settings.block_size, _MAX_BLOCK)
        chunk = read_full(source, block_size)  # source errors propagate as they are
        with _errors(location):
            blob = self._blob(location)
            if len(chunk) < block_size:
                # The whole body fits in one block: a single Put Blob.
                blob.upload_blob(chunk, overwrite=False, length=len(chunk), max_concurrency=1)
                return StoredBlob(location, len(chunk))
        ids, size = _BlockIds(), 0
        while chunk:
            with _errors(location):
                blob.stage_block(ids.next(), chunk, length=len(chunk))
            size += len(chunk)
            chunk = b""  # drop the staged block before reading the next one
            chunk = read_full(source, block_size)
        # Only a complete body gets here: commit makes it visible in one step.
        with _errors(location):
            blob.commit_block_list(ids.ids)
        return StoredBlob(location, size)

    def copy(self, location: str) -> StoredBlob:
        new = uuid.uuid4().hex
        dest = self._blob(new)
        if self._token_credential is not None:
            # An async copy cannot carry a bearer token for its source: build the
            # copy from blocks instead (still server-side).
            return self._from_ranges([(location, 0, None)])
        with _errors(location):
            url, _ = self._source(location)
            result = dest.start_copy_from_url(url)
        status = result.get("copy_status")
        try:
            size = self._wait_copy(dest, new, status)
        except BaseException:
            self.delete(new)
            raise
        return StoredBlob(new, size)

    def _wait_copy(self, dest: Any, location: str, status: str | None) -> int:
        """Poll a server-side copy until it ends; return the copied size."""
        deadline, pause = time.monotonic() + _COPY_TIMEOUT, 0.05
        while True:
            with _errors(location):
                props = dest.get_blob_properties()
            status = props.copy.status or status
            if status == "success":
                return props.size
            if status in ("failed", "aborted"):
                raise StorageError(f"copy to {location} {status}: {props.copy.status_description}")
            if time.monotonic() > deadline:
                with _errors(location):
                    dest.abort_copy(props.copy.id)
                raise StorageTimeout(f"copy to {location} still pending after {_COPY_TIMEOUT:.0f} s")
            time.sleep(pause)  # cooperative under gevent
            pause = min(pause * 2, 1.0)

    def compose(self, locations: list[str]) -> StoredBlob:
        return self._from_ranges([(loc, 0, None) for loc in locations])

    def copy_range(self, location: str, start: int, end: int) -> StoredBlob:
        return self._from_ranges([(location, start, end)])

    def _from_ranges(self, ranges: list[tuple[str, int, int | None]]) -> StoredBlob:
        """A new blob made of byte ranges of other blobs, staged server-side.

        ``end`` None means to the end of that blob. Each range is staged with Put
        Block From URL in pieces of at most 4000 MiB, then one commit publishes it."""
        new = uuid.uuid4().hex
        dest = self._blob(new)
        ids, size = _BlockIds(), 0
        for location, start, end in ranges:
            if end is None:
                with _errors(location):
                    end = self._blob(location).get_blob_properties().size
            with _errors(location):
                url, auth = self._source(location)  # a token fetch may fail
            for offset in range(start, end, _MAX_BLOCK):
                length = min(_MAX_BLOCK, end - offset)
                with _errors(location):
                    dest.stage_block_from_url(ids.next(), url, source_offset=offset, source_length=length, **auth)
                size += length
        with _errors(new):
            dest.commit_block_list(ids.ids)
            # A source range past the end of its blob is silently cut short by
            # some services: trust only the committed size.
            actual = dest.get_blob_properties().size
        if actual != size:
            self.delete(new)
            raise StorageError(f"composed {actual} bytes, expected {size} (a range past the end of its blob?)")
        return StoredBlob(new, size)

    # -- reading and deleting ------------------------------------------------

    def open(self, location: str) -> AzureBlobReader:
        return AzureBlobReader(self._blob(location), location)

    def delete(self, location: str) -> None:
        try:
            with _errors(location):
                self._blob(location).delete_blob()
        except BlobNotFound:
            pass

    # -- housekeeping --------------------------------------------------------

    def recover(self) -> None:
        """Nothing to clean: an interrupted put or compose leaves only uncommitted
        blocks, which no read or listing sees and Azure deletes after 7 days."""

    def iter_locations(self, older_than_seconds: float) -> Iterator[str]:
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than_seconds)
        prefix = self.settings.prefix
        with _errors():
            for item in self.container.list_blobs(name_starts_with=prefix or None):
                location = item.name[len(prefix):]
                if _LOCATION.match(location) and item.last_modified < cutoff:
                    yield location

    def check(self) -> None:
        # One quick attempt: readiness must answer fast, not after the retry backoff.
        quick = {"retry_total": 0, "connection_timeout": 5, "read_timeout": 10}
        with _errors():
            if self.settings.sas_token:
                # A container SAS may not read container properties: list one name.
                pages = self.container.list_blobs(results_per_page=1, **quick).by_page()
                list(next(pages, []))
            else:
                self.container.get_container_properties(**quick)


def _account_name(account_url: str) -> str:
    """The account in https://<account>.blob.core.windows.net or http://host:port/<account> (emulators)."""
    parts = urlsplit(account_url)
    host = parts.hostname or ""
    if re.fullmatch(r"[\d.]+|localhost|\[.*\]|.*:.*", host) or parts.port:
        return parts.path.strip("/").split("/")[0]
    return host.split(".")[0]
