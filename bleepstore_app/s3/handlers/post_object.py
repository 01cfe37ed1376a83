"""PostObject: a browser form upload (``POST /{bucket}``, multipart/form-data).

The form's fields stand for the headers of a PutObject (Content-Type, x-amz-meta-*,
acl for x-amz-acl, SSE and Object Lock fields...), its signature is in the form
(auth/post_policy.py), and its file is streamed to storage through the same
service path as PutObject, so versioning, default encryption, Object Lock
defaults and checksums behave the same. AWS S3 API Reference, "PostObject".
"""
from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace
from urllib.parse import quote, urlencode, urlsplit

from ... import errors
from ...auth import post_policy
from ...auth.payload import CHECKSUM_ALGORITHMS, VerifyingReader, check_checksum_value
from ...metadata.tables import NULL_VERSION
from ...service import Caller, access, lifecycle_rules, objects
from .. import form as forms
from .. import headers as h
from .. import sse as encryption_headers
from .. import xml
from ..acl import acl_from_headers
from ..authorize import authorize
from ..responses import S3Result
from ..unsupported import OBJECT_LOCK_EVENT_HOLD, UNVERIFIED_CHECKSUMS
from . import handles
from .objects import require_integrity_header

# Form fields S3 defines that BleepStore does not implement: refused, never ignored.
_REFUSED_FIELDS = ("tagging", "x-amz-security-token", "x-amz-website-redirect-location", "x-amz-grant-read",
                   "x-amz-grant-write", "x-amz-grant-read-acp", "x-amz-grant-write-acp",
                   "x-amz-grant-full-control") + OBJECT_LOCK_EVENT_HOLD + UNVERIFIED_CHECKSUMS
_STATUSES = {"200": 200, "201": 201, "204": 204}


class _Fields(dict):
    """The form's fields read as request headers (any case, as headers are)."""

    def get(self, name, default=None):
        return super().get(name.lower(), default)

    def __contains__(self, name) -> bool:
        return super().__contains__(name.lower())


@handles("PostObject")
def post_object(svc, req) -> S3Result:
    form = forms.parse(req.environ["wsgi.input"], req.headers.get("Content-Type"))
    fields = form.fields
    if "key" not in fields:
        raise errors.InvalidArgument("Bucket POST must contain a field named 'key'.  If it is specified, please "
                                     "check the order of the fields.", ArgumentName="key", ArgumentValue="")
    caller, policy = _authenticate(svc, req, fields)
    key = fields["key"].replace("${filename}", form.filename)
    if not key:
        raise errors.InvalidArgument("User key must have a length greater than 0.", ArgumentName="key",
                                     ArgumentValue="")
    headers = _as_headers(fields)
    lock = h.lock_request(headers)
    if lock is not None:
        require_integrity_header(SimpleNamespace(headers=headers), "Post Object requests with Object Lock "
                                                                    "parameters")
    low, high = policy.length_range if policy is not None else (0, None)
    high = svc.settings.max_object_size if high is None else min(high, svc.settings.max_object_size)
    body = VerifyingReader(form.file, None, expected_checksums=_checksums(headers), min_length=low,
                           max_length=high)
    sse = encryption_headers.sse_request(svc, SimpleNamespace(headers=headers, environ=req.environ))
    req.caller = caller
    decided = authorize(svc, req, fields, key)  # the bucket policy, for the form's signer and key
    try:
        record = objects.put_object(svc, caller, req.bucket, key, body, None, h.object_attributes(headers),
                                    acl=acl_from_headers(headers), lock=lock, sse=sse)
    finally:
        if decided is not None:
            access.reset(decided)
    out = {"ETag": f'"{record.etag}"', "Location": _object_url(req, key)}
    out.update(encryption_headers.response_headers(svc, record.encryption, sse and sse.customer, sse))
    for algorithm, value in record.checksums.items():
        out[f"x-amz-checksum-{algorithm.lower()}"] = value
    if record.version_id != NULL_VERSION:
        out["x-amz-version-id"] = record.version_id
    out.update(lifecycle_rules.expiration_headers(svc, record))
    return _answer(req, fields, key, record.etag, out)


def _authenticate(svc, req, fields: dict[str, str]) -> tuple[Caller | None, post_policy.Policy | None]:
    """The form's signer and its checked policy; without policy and signature the
    request's own caller (anonymous, or a header-signed request)."""
    found = {}

    def lookup_secret(access_key: str) -> str | None:
        found["record"] = record = req.credentials.get(access_key)
        return record.secret_key if record else None

    access_key, policy = post_policy.authenticate(fields, req.bucket, lookup_secret, svc.settings.region,
                                                  datetime.now(timezone.utc))
    if access_key is None:
        return req.caller, None
    record = found["record"]
    return Caller(record.access_key, record.owner_id, record.display_name), policy


def _as_headers(fields: dict[str, str]) -> _Fields:
    """The fields that mean request headers. Their values go back out as response
    headers of GetObject, so control characters are refused here."""
    for name in _REFUSED_FIELDS:
        if name in fields:
            raise errors.NotImplemented(f"The form field {name} is not implemented.")
    headers = _Fields()
    for name, value in fields.items():
        if name in ("key", "policy", "file", "success_action_status", "success_action_redirect", "redirect"):
            continue
        if any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in value):
            raise errors.InvalidArgument(f"The form field {name} holds a control character.", ArgumentName=name)
        headers["x-amz-acl" if name == "acl" else name] = value
    return headers


def _checksums(headers: _Fields) -> dict[str, str | None]:
    """x-amz-checksum-<alg> fields to verify, x-amz-checksum-algorithm to compute;
    CRC64NVME when neither (S3 gives every new object one)."""
    expected: dict[str, str | None] = {}
    for algorithm in CHECKSUM_ALGORITHMS:
        value = headers.get(f"x-amz-checksum-{algorithm.lower()}")
        if value is not None:
            expected[algorithm] = check_checksum_value(algorithm, value)
    if len(expected) > 1:
        raise errors.InvalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not "
                                    "allowed.")
    asked = headers.get("x-amz-checksum-algorithm")
    if asked is not None:
        if asked.upper() not in CHECKSUM_ALGORITHMS:
            raise errors.InvalidRequest("Value for x-amz-checksum-algorithm header is invalid.")
        expected.setdefault(asked.upper(), None)
    return expected or {"CRC64NVME": None}


def _object_url(req, key: str) -> str:
    scheme = req.environ.get("wsgi.url_scheme", "http")
    host = req.environ.get("HTTP_HOST", "")
    path = quote(key, safe="/~") if req.environ.get("bleepstore.vhost_bucket") else \
        f"{quote(req.bucket)}/{quote(key, safe='/~')}"
    return f"{scheme}://{host}/{path}"


def _answer(req, fields: dict[str, str], key: str, etag: str, out: dict[str, str]) -> S3Result:
    """success_action_redirect (303 to it, with bucket, key and etag added to its
    query), else success_action_status: 204 (the default), 200, or 201 with a
    PostResponse document."""
    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    if redirect and urlsplit(redirect).scheme in ("http", "https") and urlsplit(redirect).netloc:
        query = urlencode({"bucket": req.bucket, "key": key, "etag": f'"{etag}"'})
        out["Location"] = redirect + ("&" if urlsplit(redirect).query else "?") + query
        return S3Result(status=303, headers=out)
    status = _STATUSES.get((fields.get("success_action_status") or "").strip(), 204)
    if status != 201:
        return S3Result(status=status, headers=out)
    return S3Result(status=201, headers=out, xml=xml.document("PostResponse", [
        xml.el("Location", out["Location"]), xml.el("Bucket", req.bucket), xml.el("Key", key),
        f"<ETag>&quot;{etag}&quot;</ETag>"]))
