"""An incoming S3 request: where it points, who sent it, and its verified body."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import unquote

from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import BadRequestKeyError

from .. import errors
from ..auth import sigv2, sigv4
from ..auth.chunked import AwsChunkedReader
from ..auth.payload import CHECKSUM_ALGORITHMS, VerifyingReader, check_checksum_value, decode_content_md5
from ..service import Caller

MAX_SMALL_BODY = 1024 * 1024 + 64 * 1024  # XML documents (DeleteObjects is the largest)
# Operations whose body streams to storage: with a generic SigV4 signer (no
# x-amz-content-sha256) their signature is checked as the body ends, before the
# blob is made durable or any metadata is written; any other body is read (and
# the signature checked) before the handler runs.
STREAMED_BODIES = frozenset({"PutObject", "UploadPart"})


_ENVIRON_KEYS: dict[str, str] = {}  # header name -> its WSGI environ key, as named in code
_MAX_ENVIRON_KEYS = 1024  # names come from code, but a cap keeps a stray caller from growing it


def environ_key(name: str) -> str:
    """The WSGI environ key of a header: CONTENT_TYPE, CONTENT_LENGTH, else HTTP_ + the
    name upper-cased with '_' for '-' (as werkzeug's EnvironHeaders reads it)."""
    key = _ENVIRON_KEYS.get(name)
    if key is None:
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        if len(_ENVIRON_KEYS) < _MAX_ENVIRON_KEYS:
            _ENVIRON_KEYS[name] = key
    return key


class RequestHeaders(EnvironHeaders):
    """EnvironHeaders whose lookups are one dict probe. A PutObject asks for about
    40 headers it was not sent (ACL grants, checksums, lock, SSE); werkzeug's
    lookup builds the environ key and raises and catches a BadRequestKeyError for
    each, 1.6 us against 0.05."""

    def _get_key(self, key: str) -> str:
        if not isinstance(key, str):
            raise BadRequestKeyError(key)
        try:
            return self.environ[environ_key(key)]
        except KeyError:
            raise BadRequestKeyError(key) from None

    def get(self, key, default=None, type=None):
        value = self.environ.get(environ_key(key)) if isinstance(key, str) else None
        if value is None:
            return default
        if type is None:
            return value
        try:
            return type(value)
        except ValueError:
            return default

    def __contains__(self, key) -> bool:
        return isinstance(key, str) and environ_key(key) in self.environ


@dataclass
class S3Request:
    environ: dict
    method: str
    raw_path: str
    raw_query: str
    bucket: str | None
    key: str | None
    query: dict[str, str]
    headers: RequestHeaders
    request_id: str
    operation: str = "Unknown"
    caller: Caller | None = None
    signed: sigv4.SignedRequest | None = None
    credentials: "CredentialCache | None" = None  # for signatures inside the body (POST forms)
    _body: VerifyingReader | None = field(default=None, repr=False)

    @property
    def resource(self) -> str:
        """The Resource element of an error: /bucket/key as the client named it."""
        if self.bucket is None:
            return "/"
        return f"/{self.bucket}/{self.key}" if self.key else f"/{self.bucket}"

    def content_length(self) -> int | None:
        value = self.environ.get("CONTENT_LENGTH")
        return _length(value, "Content-Length") if value else None

    def body(self, required_length: bool = True, also_compute: str | None = None,
             default_checksum: str | None = None) -> VerifyingReader:
        """The request body as a reader that verifies itself as it is consumed.

        ``also_compute``: a checksum algorithm to compute even if not sent;
        ``default_checksum``: one to compute when the client sent none (S3 gives
        every new object a CRC64NVME)."""
        if self._body is None:
            self._body = _body_reader(self, required_length, also_compute, default_checksum)
        return self._body

    def small_body(self, verify_checksums: bool = True) -> bytes:
        """A bounded body (an XML document), read and verified whole."""
        length = self.content_length() or 0
        if length > MAX_SMALL_BODY:
            raise errors.MalformedXML()
        if self._body is None and not verify_checksums:
            self._body = _body_reader(self, False, None, None, declared_checksums=False)
        return self.body(required_length=False).read_all()


def parse_request(environ: dict, request_id: str) -> S3Request:
    """Split the raw request URI into bucket, key and query (no guessing from Host:
    virtual-host addressing has already been resolved by the addressing middleware)."""
    raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or _rebuild_uri(environ)
    if not raw_uri.isascii():
        raw_uri = _utf8_uri(raw_uri)
    if raw_uri.startswith(("http://", "https://")):
        raw_uri = "/" + raw_uri.split("/", 3)[3] if raw_uri.count("/") >= 3 else "/"
    raw_path, _, raw_query = raw_uri.partition("?")
    path = _decoded(raw_path)
    vhost_bucket = environ.get("bleepstore.vhost_bucket")
    if vhost_bucket:
        bucket, key = vhost_bucket, path[1:] or None
    else:
        bucket, _, key = path[1:].partition("/")
        bucket, key = bucket or None, key or None
    return S3Request(
        environ=environ, method=environ["REQUEST_METHOD"], raw_path=raw_path, raw_query=raw_query,
        bucket=bucket, key=key, query=parse_query(raw_query), headers=RequestHeaders(environ),
        request_id=request_id,
    )


def parse_query(raw_query: str) -> dict[str, str]:
    """Query parameters, percent-decoded ('+' stays '+'); the first value wins."""
    query: dict[str, str] = {}
    for part in raw_query.split("&"):
        if part:
            name, _, value = part.partition("=")
            query.setdefault(_decoded(name), _decoded(value))
    return query


def _decoded(text: str) -> str:
    """Percent-decoded as UTF-8. Bytes that are not UTF-8 are refused, never
    replaced: k%FF and k%FE would both become k + U+FFFD and overwrite each other."""
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise errors.InvalidURI() from None


def _utf8_uri(raw_uri: str) -> str:
    """A request target with raw (not percent-encoded) bytes above 0x7F: the WSGI
    server hands them over as latin-1; they must be UTF-8."""
    try:
        return raw_uri.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise errors.InvalidURI() from None


def _rebuild_uri(environ: dict) -> str:
    from urllib.parse import quote
    path = _utf8_uri(environ.get("PATH_INFO", "/"))
    qs = environ.get("QUERY_STRING")
    return quote(path, safe="/") + ("?" + qs if qs else "")


class CredentialCache:
    """Access key -> credential, reused for a few seconds inside one worker.

    Credentials change rarely; the stated staleness bound is ``ttl`` seconds
    (``auth.cache_seconds``) for a key that was disabled, rotated or removed on
    another node (or another worker). ``forget`` drops one key now (this worker's
    own admin change).
    """

    def __init__(self, lookup, ttl: float) -> None:
        self._lookup, self._ttl = lookup, ttl
        self._entries: dict[str, tuple[float, object]] = {}

    def get(self, access_key: str):
        now = time.monotonic()
        hit = self._entries.get(access_key)
        if hit is not None and hit[0] > now:
            return hit[1]
        record = self._lookup(access_key)
        if self._ttl > 0:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[access_key] = (now + self._ttl, record)
        return record

    def forget(self, access_key: str) -> None:
        self._entries.pop(access_key, None)


def authenticate(req: S3Request, credentials: CredentialCache, region: str) -> None:
    """Set ``req.caller`` and ``req.signed`` from the signature, or leave them None
    for an anonymous request."""
    req.credentials = credentials
    auth_header = req.headers.get("Authorization")
    presigned_v2 = "AWSAccessKeyId" in req.query and "Signature" in req.query
    presigned = "X-Amz-Algorithm" in req.query or presigned_v2
    if auth_header is None and not presigned:
        return
    if auth_header is not None and presigned:
        raise errors.InvalidArgument("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                                     "Signature query string parameter or the Authorization header should be specified",
                                     ArgumentName="Authorization", ArgumentValue=auth_header)
    found: dict[str, object] = {}

    def lookup_secret(access_key: str) -> str | None:
        record = credentials.get(access_key)
        found["record"] = record
        return record.secret_key if record else None

    now = datetime.now(timezone.utc)
    vhost_bucket = req.environ.get("bleepstore.vhost_bucket")
    if presigned_v2:
        signed = sigv2.verify_presigned(req.method, req.raw_path, req.raw_query, req.query, req.headers,
                                        lookup_secret, now, vhost_bucket)
    elif auth_header is not None and auth_header.startswith("AWS "):
        signed = sigv2.verify_header_auth(req.method, req.raw_path, req.raw_query, req.headers,
                                          lookup_secret, now, vhost_bucket)
    elif presigned:
        signed = sigv4.verify_presigned(req.method, req.raw_path, req.raw_query, req.query, req.headers,
                                        lookup_secret, now, region)
    else:
        signed = sigv4.verify_header_auth(req.method, req.raw_path, req.raw_query, req.headers,
                                          lookup_secret, now, region)
    if signed.covered_headers is not None:  # SigV2 signs every x-amz-* header by construction
        sigv4.require_signed_headers(_amz_header_names(req.environ), signed.covered_headers)
    if signed.presigned:
        _hoist_query_headers(req)
    record = found["record"]
    req.signed = signed
    req.caller = Caller(record.access_key, record.owner_id, record.display_name)
    if signed.verify_payload is not None:
        _verify_body_signature_early(req)


def _verify_body_signature_early(req: S3Request) -> None:
    """A signature over the body's own SHA-256 (no x-amz-content-sha256 sent):
    checked now against an empty or bounded body; a streamed body (PutObject,
    UploadPart) is checked by its reader as it ends, or by settle_signature."""
    environ = req.environ
    length = req.content_length()
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if req.operation in STREAMED_BODIES and (chunked or length):
        return
    if not chunked and not length:
        _body_signature_checked(req, sigv4.EMPTY_SHA256)
        return
    digest, kept = _hash_raw_body(environ, length, keep=MAX_SMALL_BODY)
    _body_signature_checked(req, digest)
    # The handler reads the same bytes; a body too large to keep is one no handler
    # of these operations accepts (small_body refuses it by its length).
    environ["wsgi.input"] = io.BytesIO(kept or b"")


def _hash_raw_body(environ: dict, length: int | None, keep: int = 0) -> tuple[str, bytes | None]:
    """The SHA-256 of the whole raw body, and the body itself if at most ``keep`` bytes."""
    source = environ["wsgi.input"]
    sha, parts, seen = hashlib.sha256(), [], 0
    while length is None or seen < length:
        want = 1024 * 1024 if length is None else min(1024 * 1024, length - seen)
        try:
            data = source.read(want)
        except TimeoutError:
            raise errors.RequestTimeout() from None
        except OSError:
            raise errors.IncompleteBody() from None
        if not data:
            if length is not None:
                raise errors.IncompleteBody()
            break
        seen += len(data)
        sha.update(data)
        if parts is not None:
            parts.append(data)
            if seen > keep:
                parts = None
    return sha.hexdigest(), (b"".join(parts) if parts is not None else None)


def _body_signature_checked(req: S3Request, body_sha256: str) -> None:
    """Check the deferred signature; from here on the request is an ordinary one
    whose payload hash is the body's."""
    req.signed.verify_payload(body_sha256)  # raises SignatureDoesNotMatch
    req.signed = dataclasses.replace(req.signed, payload_hash=body_sha256, verify_payload=None)


def settle_signature(req: S3Request | None) -> None:
    """Make sure a signature over the body was checked: called after the handler,
    whether it answered or raised, so that a forged request never learns what the
    handler found (NoSuchBucket, a failed precondition...), only
    SignatureDoesNotMatch. Reads what is left of the body to hash it."""
    if req is None or req.signed is None or req.signed.verify_payload is None:
        return
    if req._body is not None:
        req._body.drain()  # its end runs _body_signature_checked
    else:
        _body_signature_checked(req, _hash_raw_body(req.environ, req.content_length())[0])
    if req.signed.verify_payload is not None:  # the reader ended without proving it
        raise errors.SignatureDoesNotMatch()


# Query parameters of a presigned URL that are the signature's own, not request headers.
_PRESIGN_PARAMETERS = frozenset({"x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-expires",
                                 "x-amz-signedheaders", "x-amz-signature", "x-amz-security-token",
                                 "x-amz-content-sha256"})


def _hoist_query_headers(req: S3Request) -> None:
    """A presigned URL may carry x-amz-* headers as query parameters (SigV2
    presigners move them all there; SigV4 SDKs hoist some): covered by the
    signature like the rest of the query, they mean what the header means, so they
    become headers unless the header itself was sent (never dropped in silence)."""
    environ = req.environ
    for name, value in req.query.items():
        lower = name.lower()
        if lower.startswith("x-amz-") and lower not in _PRESIGN_PARAMETERS:
            environ.setdefault("HTTP_" + lower.upper().replace("-", "_"), value)


def _amz_header_names(environ: dict) -> list[str]:
    """The x-amz-* header names present, as EnvironHeaders names them (read straight
    from the environ: a third of the cost of iterating every header)."""
    return [key[5:].replace("_", "-").lower() for key in environ if key.startswith("HTTP_X_AMZ_")]


def _body_reader(req: S3Request, required_length: bool, also_compute: str | None,
                 default_checksum: str | None, declared_checksums: bool = True) -> VerifyingReader:
    payload_hash = (req.signed.payload_hash if req.signed
                    else req.headers.get("x-amz-content-sha256", sigv4.UNSIGNED_PAYLOAD))
    check_sha256 = None
    if req.signed is not None and req.signed.verify_payload is not None:
        check_sha256 = lambda digest: _body_signature_checked(req, digest)  # noqa: E731
        payload_hash = sigv4.UNSIGNED_PAYLOAD  # nothing to compare with: the signature is the check
    expected = _declared_checksums(req) if declared_checksums else {}
    if also_compute:
        expected.setdefault(also_compute, None)
    if default_checksum and not expected and "x-amz-trailer" not in req.headers:
        expected[default_checksum] = None
    source = req.environ["wsgi.input"]
    if payload_hash in sigv4.STREAMING_MODES:
        if req.signed is None and payload_hash != "STREAMING-UNSIGNED-PAYLOAD-TRAILER":
            raise errors.AccessDenied("Signed streaming bodies need a signed request.")
        length = _decoded_length(req)
        trailer_names = tuple(n.strip().lower() for n in req.headers.get("x-amz-trailer", "").split(",") if n.strip())
        for name in trailer_names:
            algorithm = name.removeprefix("x-amz-checksum-").upper()
            if not name.startswith("x-amz-checksum-") or algorithm not in CHECKSUM_ALGORITHMS:
                raise errors.InvalidRequest(f"The value specified in the x-amz-trailer header is not supported: {name}")
            expected.setdefault(algorithm, None)
        source = AwsChunkedReader(source, payload_hash, req.signed, trailer_names)
        payload_hash = sigv4.UNSIGNED_PAYLOAD  # each chunk carries its own signature
    else:
        length = req.content_length()
        if length is None:
            if required_length:
                raise errors.MissingContentLength()
            length = 0
    if len([v for v in expected.values() if v is not None]) > 1:
        raise errors.InvalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
    content_md5 = req.headers.get("Content-MD5")
    return VerifyingReader(
        source, length,
        content_md5=decode_content_md5(content_md5) if content_md5 is not None else None,
        expected_sha256=payload_hash if payload_hash != sigv4.UNSIGNED_PAYLOAD else None,
        expected_checksums=expected,
        check_sha256=check_sha256,
    )


def _declared_checksums(req: S3Request) -> dict[str, str | None]:
    """x-amz-checksum-<alg> header values to verify, and x-amz-sdk-checksum-algorithm
    (compute and store, value arriving later or never)."""
    expected: dict[str, str | None] = {}
    for algorithm in CHECKSUM_ALGORITHMS:
        value = req.headers.get(f"x-amz-checksum-{algorithm.lower()}")
        if value is not None:
            expected[algorithm] = check_checksum_value(algorithm, value)
    sdk_algorithm = req.headers.get("x-amz-sdk-checksum-algorithm")
    if sdk_algorithm:
        sdk_algorithm = sdk_algorithm.upper()
        if sdk_algorithm not in CHECKSUM_ALGORITHMS:
            raise errors.InvalidRequest("Value for x-amz-sdk-checksum-algorithm header is invalid.")
        expected.setdefault(sdk_algorithm, None)
    return expected


def _decoded_length(req: S3Request) -> int:
    value = req.headers.get("x-amz-decoded-content-length")
    if value is None:
        raise errors.MissingContentLength("You must provide the x-amz-decoded-content-length header "
                                          "with an aws-chunked body.")
    return _length(value, "x-amz-decoded-content-length")


def _length(value: str, header: str) -> int:
    try:
        length = int(value)
    except ValueError:
        raise errors.InvalidArgument(f"{header} is not a number", ArgumentName=header, ArgumentValue=value) from None
    if length < 0:
        raise errors.InvalidArgument(f"{header} is negative", ArgumentName=header, ArgumentValue=value)
    return length
