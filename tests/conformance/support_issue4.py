"""Helpers for the copy / multi-delete / conditional / checksum / aws-chunked /
presigned / ACL conformance tests.

Everything here is self-contained (it does not import the sibling helpers module):
raw SigV4-signed requests (botocore's signer with a forced payload hash), an
aws-chunked encoder with chained chunk signatures and trailers (AWS S3 API
Reference, "Signature Calculations for the Authorization Header: Transferring
Payload in Multiple Chunks" and "... Including Trailing Headers"), checksum
helpers, ACL helpers and an AWS CLI runner.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from unittest import mock
from urllib.parse import quote

import botocore.auth
import requests
from awscrt import checksums as _crt
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from . import helpers as _helpers
from ..servers import ACCESS_KEY, OTHER_ACCESS_KEY, OTHER_SECRET_KEY, SECRET_KEY

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
NS = "{" + S3_NS + "}"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTH_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
REGION = "us-east-1"
INLINE_MAX = 16 * 1024
SMALL = 1000                 # stored inline in the database
LARGE = 64 * 1024 + 123      # stored as a file
AWS = str(Path(sys.executable).parent / "aws")


# -- errors ---------------------------------------------------------------------------

def client_error(exc_info) -> tuple[str, int]:
    """(Code, HTTP status) of a botocore ClientError captured by pytest.raises."""
    err = exc_info.value
    assert isinstance(err, ClientError), err
    return err.response["Error"]["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"]


def client_error_message(exc_info) -> str:
    return exc_info.value.response["Error"].get("Message", "")


def error_fields(resp: requests.Response) -> dict[str, str]:
    """The children of an S3 <Error> document (tag -> text)."""
    assert resp.content, f"empty error body (status {resp.status_code})"
    root = ET.fromstring(resp.content)
    assert root.tag == "Error", resp.content[:500]
    return {child.tag: child.text or "" for child in root}


def assert_error(resp: requests.Response, code: str, status: int) -> dict[str, str]:
    """Assert an S3 XML error response; return its fields."""
    assert resp.status_code == status, (resp.status_code, resp.content[:600])
    fields = error_fields(resp)
    assert fields.get("Code") == code, (resp.status_code, resp.content[:600])
    return fields


def describe(resp: requests.Response) -> str:
    return f"{resp.status_code} {resp.content[:600]!r}"


# -- SigV4 ---------------------------------------------------------------------------------

# sign_headers: the SigV4 signer with a forceable payload hash lives in helpers.py
# (botocore drops a preset X-Amz-Content-SHA256, so STREAMING-* is forced via payload()).
sign_headers = _helpers.sign_headers


def quote_key(key: str) -> str:
    return quote(key, safe="/~")


def object_path(bucket: str, key: str | None = None) -> str:
    return f"/{bucket}" if key is None else f"/{bucket}/{quote_key(key)}"


def raw(server, method: str, path: str, *, query: str = "", headers: dict | None = None, body: bytes = b"",
        sign: bool = True, payload_hash: str | None = None, access_key: str = ACCESS_KEY,
        secret_key: str = SECRET_KEY) -> requests.Response:
    """Send ``method path?query`` (signed with SigV4 unless ``sign`` is False)."""
    host = f"127.0.0.1:{server.port}"
    target = path + (f"?{query}" if query else "")
    send = dict(headers or {})
    if sign:
        send = sign_headers(method, f"http://{host}{target}", headers=send, body=body,
                            access_key=access_key, secret_key=secret_key, payload_hash=payload_hash)
    send["Host"] = host
    return requests.request(method, f"{server.endpoint}{target}", headers=send, data=body,
                            allow_redirects=False, timeout=60)


def presign_v4(method: str, url: str, *, expires: int = 300, when: _dt.datetime | None = None,
               access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY,
               headers: dict | None = None) -> str:
    """A SigV4 query-string-signed URL, built with botocore's S3SigV4QueryAuth."""
    req = AWSRequest(method=method, url=url, headers=dict(headers or {}))
    signer = botocore.auth.S3SigV4QueryAuth(Credentials(access_key, secret_key), "s3", REGION, expires=expires)
    if when is not None:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(req)
    else:
        signer.add_auth(req)
    return req.url


def signing_key(secret_key: str, date: str, region: str = REGION, service: str = "s3") -> bytes:
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


# -- checksums ---------------------------------------------------------------------------

def _b64(raw_bytes: bytes) -> str:
    return base64.b64encode(raw_bytes).decode()


def checksum_b64(algorithm: str, data: bytes) -> str:
    """The base64 x-amz-checksum-<algorithm> value of ``data``."""
    algorithm = algorithm.upper()
    if algorithm == "CRC32":
        return _b64(zlib.crc32(data).to_bytes(4, "big"))
    if algorithm == "CRC32C":
        return _b64(_crt.crc32c(data).to_bytes(4, "big"))
    if algorithm == "CRC64NVME":
        return _b64(_crt.crc64nvme(data).to_bytes(8, "big"))
    if algorithm == "SHA1":
        return _b64(hashlib.sha1(data).digest())
    if algorithm == "SHA256":
        return _b64(hashlib.sha256(data).digest())
    raise ValueError(algorithm)


def content_md5(data: bytes) -> str:
    return _b64(hashlib.md5(data).digest())


def md5_etag(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest() + '"'


# -- aws-chunked ---------------------------------------------------------------------------

SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


class ChunkSigner:
    """Chains chunk signatures from the seed (request) signature."""

    def __init__(self, seed_signature: str, amz_date: str, secret_key: str = SECRET_KEY) -> None:
        self.previous = seed_signature
        self.amz_date = amz_date
        self.scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
        self.key = signing_key(secret_key, amz_date[:8])

    def chunk(self, data: bytes) -> str:
        text = "\n".join(("AWS4-HMAC-SHA256-PAYLOAD", self.amz_date, self.scope, self.previous, EMPTY_SHA256,
                          hashlib.sha256(data).hexdigest()))
        self.previous = hmac_hex(self.key, text)
        return self.previous

    def trailer(self, trailer_lines: list[tuple[str, str]]) -> str:
        canonical = "".join(f"{name}:{value}\n" for name, value in trailer_lines)
        text = "\n".join(("AWS4-HMAC-SHA256-TRAILER", self.amz_date, self.scope, self.previous,
                          hashlib.sha256(canonical.encode()).hexdigest()))
        self.previous = hmac_hex(self.key, text)
        return self.previous


def split_chunks(data: bytes, chunk_size: int) -> list[bytes]:
    return [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)]


def encode_aws_chunked(data: bytes, mode: str, chunk_size: int, *, signer: ChunkSigner | None = None,
                       trailer: list[tuple[str, str]] | None = None, tamper_chunk: int | None = None,
                       tamper_trailer_signature: bool = False) -> bytes:
    """The aws-chunked encoding of ``data``.

    Signed modes: ``hex;chunk-signature=sig\\r\\n data \\r\\n`` ... ``0;chunk-signature=sig\\r\\n``
    then (``-TRAILER``) the trailer lines and ``x-amz-trailer-signature``, then ``\\r\\n``.
    Unsigned trailer mode: ``hex\\r\\n data \\r\\n`` ... ``0\\r\\n`` trailer lines ``\\r\\n``.
    ``tamper_chunk`` (index) gets a wrong chunk signature.
    """
    signed = mode.startswith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    out = bytearray()
    chunks = split_chunks(data, chunk_size) + [b""]
    for i, chunk in enumerate(chunks):
        if signed:
            sig = signer.chunk(chunk)
            if tamper_chunk == i:
                sig = ("0" if sig[0] != "0" else "1") + sig[1:]
            out += f"{len(chunk):x};chunk-signature={sig}\r\n".encode()
        else:
            out += f"{len(chunk):x}\r\n".encode()
        if chunk:
            out += chunk + b"\r\n"
    if mode.endswith("-TRAILER"):
        for name, value in trailer or []:
            out += f"{name}:{value}\r\n".encode()
        if signed:
            sig = signer.trailer(trailer or [])
            if tamper_trailer_signature:
                sig = ("0" if sig[0] != "0" else "1") + sig[1:]
            out += f"x-amz-trailer-signature:{sig}\r\n".encode()
        out += b"\r\n"
    else:
        out += b"\r\n"
    return bytes(out)


def streaming_put(server, bucket: str, key: str, data: bytes, mode: str, *, chunk_size: int = 64 * 1024,
                  trailer_algorithm: str | None = "CRC32", trailer_value: str | None = None,
                  decoded_length: int | None = None, tamper_chunk: int | None = None,
                  truncate: int | None = None, extra_headers: dict | None = None,
                  tamper_trailer_signature: bool = False,
                  transfer_encoding_chunked: bool = False, access_key: str = ACCESS_KEY,
                  secret_key: str = SECRET_KEY):
    """PUT ``data`` as an aws-chunked body in ``mode``; returns (status, headers, body bytes).

    The body is encoded first (with the real seed signature), then optionally
    truncated by ``truncate`` bytes. With ``transfer_encoding_chunked`` the body is
    sent with HTTP ``Transfer-Encoding: chunked`` (a generator body over
    http.client) and no Content-Length.
    """
    import http.client

    has_trailer = mode.endswith("-TRAILER")
    trailer_name = f"x-amz-checksum-{trailer_algorithm.lower()}" if has_trailer and trailer_algorithm else None
    trailer = None
    if trailer_name:
        trailer = [(trailer_name, trailer_value if trailer_value is not None
                    else checksum_b64(trailer_algorithm, data))]

    headers = {"Content-Encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data) if decoded_length is None else decoded_length)}
    if trailer_name:
        headers["x-amz-trailer"] = trailer_name
    headers.update(extra_headers or {})

    # The encoded length does not depend on the signature values (fixed 64 hex chars).
    dummy = ChunkSigner("0" * 64, "20000101T000000Z", secret_key)
    encoded_len = len(encode_aws_chunked(data, mode, chunk_size, signer=dummy, trailer=trailer))
    if not transfer_encoding_chunked:
        headers["Content-Length"] = str(encoded_len - (truncate or 0))
    host = f"127.0.0.1:{server.port}"
    path = object_path(bucket, key)
    signed_headers = sign_headers("PUT", f"http://{host}{path}", headers=headers, access_key=access_key,
                                  secret_key=secret_key, payload_hash=mode)
    signed_headers["Host"] = host
    seed = signed_headers["Authorization"].rsplit("Signature=", 1)[1].strip()
    signer = ChunkSigner(seed, signed_headers["X-Amz-Date"], secret_key)
    body = encode_aws_chunked(data, mode, chunk_size, signer=signer, trailer=trailer, tamper_chunk=tamper_chunk,
                              tamper_trailer_signature=tamper_trailer_signature)
    assert len(body) == encoded_len
    if truncate:
        body = body[:-truncate]

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        try:
            _send_streaming(conn, path, signed_headers, body, transfer_encoding_chunked)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (e.g. a bad chunk signature) and closed: read its answer
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _send_streaming(conn, path, signed_headers, body, transfer_encoding_chunked):
    if transfer_encoding_chunked:
        def pieces():  # a generator body: http.client sends it with Transfer-Encoding: chunked
            for i in range(0, len(body), 10000):
                yield body[i:i + 10000]
        conn.request("PUT", path, body=pieces(), headers=signed_headers, encode_chunked=True)
    else:
        conn.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
        for name, value in signed_headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        for i in range(0, len(body), 65536):
            conn.send(body[i:i + 65536])


def xml_error(body: bytes) -> dict[str, str]:
    root = ET.fromstring(body)
    assert root.tag == "Error", body[:500]
    return {child.tag: child.text or "" for child in root}


# -- ACLs -------------------------------------------------------------------------------------

def canonical_id(client) -> str:
    return client.list_buckets()["Owner"]["ID"]


def grant_set(acl: dict) -> set[tuple[str, str, str]]:
    """{(type, id-or-uri, permission)} of a Get*Acl response."""
    out = set()
    for grant in acl.get("Grants", []):
        grantee = grant["Grantee"]
        ident = grantee.get("ID") or grantee.get("URI") or grantee.get("EmailAddress")
        out.add((grantee["Type"], ident, grant["Permission"]))
    return out


def user_grant(user_id: str, permission: str) -> tuple[str, str, str]:
    return ("CanonicalUser", user_id, permission)


def group_grant(uri: str, permission: str) -> tuple[str, str, str]:
    return ("Group", uri, permission)


def acl_xml(owner_id: str, grants: list[tuple[str, str, str]]) -> bytes:
    """An AccessControlPolicy document."""
    parts = [f'<AccessControlPolicy xmlns="{S3_NS}"><Owner><ID>{owner_id}</ID></Owner><AccessControlList>']
    for kind, ident, permission in grants:
        if kind == "CanonicalUser":
            grantee = (f'<Grantee xmlns:xsi="{XSI_NS}" xsi:type="CanonicalUser"><ID>{ident}</ID></Grantee>')
        else:
            grantee = f'<Grantee xmlns:xsi="{XSI_NS}" xsi:type="Group"><URI>{ident}</URI></Grantee>'
        parts.append(f"<Grant>{grantee}<Permission>{permission}</Permission></Grant>")
    parts.append("</AccessControlList></AccessControlPolicy>")
    return "".join(parts).encode()


def anonymous(server, method: str, bucket: str, key: str | None = None, *, query: str = "",
              body: bytes = b"") -> requests.Response:
    return raw(server, method, object_path(bucket, key), query=query, body=body, sign=False)


# -- AWS CLI ------------------------------------------------------------------------------------

def aws_cli(server, *args: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY,
            timeout: float = 120, config_file: str = "/dev/null") -> subprocess.CompletedProcess:
    env = dict(os.environ, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key,
               AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE=config_file,
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE"):
        env.pop(name, None)
    return subprocess.run([AWS, "--endpoint-url", server.endpoint, *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


OTHER_CREDENTIALS = (OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
