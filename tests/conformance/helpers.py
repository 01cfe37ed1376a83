"""Helpers for conformance tests: raw SigV4-signed requests, error parsing, models.

Raw requests are signed with botocore's own signer (``S3SigV4Auth``) so that the
server is checked against the reference implementation of the signature, then
sent with ``requests`` (or a raw socket) so that the test controls every byte.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import socket
import xml.etree.ElementTree as ET
from unittest import mock
from urllib.parse import quote

import botocore.auth
import pytest
import requests
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from ..servers import ACCESS_KEY, SECRET_KEY

S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
VHOST_DOMAIN = "s3.localhost"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


# -- errors ---------------------------------------------------------------------

def client_error(exc_info) -> tuple[str, int]:
    """(Code, HTTP status) of a botocore ClientError captured by pytest.raises."""
    err = exc_info.value
    assert isinstance(err, ClientError), err
    return err.response["Error"]["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"]


def assert_client_error(exc_info, code: str, status: int) -> None:
    assert client_error(exc_info) == (code, status)


def error_of(resp: requests.Response | bytes) -> dict[str, str]:
    """The fields of an S3 <Error> document (a response or its body) as a dict (tag -> text)."""
    content = resp if isinstance(resp, bytes) else resp.content
    assert content, "empty error body"
    root = ET.fromstring(content)
    assert root.tag == "Error", content
    return {child.tag: child.text or "" for child in root}


def assert_error(resp: requests.Response, code: str, status: int) -> dict[str, str]:
    """Assert an S3 XML error response and return its fields."""
    assert resp.status_code == status, (resp.status_code, resp.content[:500])
    fields = error_of(resp)
    assert fields.get("Code") == code, resp.content[:500]
    return fields


# -- signing ----------------------------------------------------------------------

class _Signer(botocore.auth.S3SigV4Auth):
    """S3SigV4Auth whose payload hash can be forced (e.g. UNSIGNED-PAYLOAD, or a lie)."""

    forced_payload_hash: str | None = None

    def payload(self, request):
        if self.forced_payload_hash is not None:
            return self.forced_payload_hash
        return super().payload(request)


def sign_headers(method: str, url: str, *, headers: dict | None = None, body: bytes = b"",
                 access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, region: str = "us-east-1",
                 payload_hash: str | None = None, when: _dt.datetime | None = None) -> dict[str, str]:
    """The headers (including Host, X-Amz-Date, X-Amz-Content-SHA256 and Authorization)
    of ``method url`` signed with SigV4. ``url`` must be already percent-encoded."""
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    signer = _Signer(Credentials(access_key, secret_key), "s3", region)
    signer.forced_payload_hash = payload_hash
    if when is not None:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(req)
    else:
        signer.add_auth(req)
    out = dict(req.headers.items())
    out["Host"] = botocore.auth._host_from_url(url)
    return out


def presign(method: str, url: str, *, expires: int = 300, access_key: str = ACCESS_KEY,
            secret_key: str = SECRET_KEY, when: _dt.datetime | None = None) -> str:
    """A SigV4 presigned URL (query authentication) for ``method url``."""
    req = AWSRequest(method=method, url=url)
    signer = botocore.auth.S3SigV4QueryAuth(Credentials(access_key, secret_key), "s3", "us-east-1",
                                            expires=expires)
    if when is not None:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(req)
    else:
        signer.add_auth(req)
    return req.url


def key_path(bucket: str | None, key: str | None = None) -> str:
    """A path-style request path with the key percent-encoded as SDKs do."""
    if bucket is None:
        return "/"
    if key is None:
        return f"/{bucket}"
    return f"/{bucket}/{quote(key, safe='/~')}"


def signed_request(server, method: str, path: str, *, query: str = "", headers: dict | None = None,
                   body: bytes = b"", host: str | None = None, sign: bool = True,
                   signed_body: bytes | None = None, **sign_kwargs) -> requests.Response:
    """Send ``method path?query`` to the server, signed unless ``sign`` is False.

    ``host`` overrides the Host header (and the signed host), e.g. for virtual-host
    style. ``signed_body`` signs a different body than the one sent.
    """
    host = host or f"127.0.0.1:{server.port}"
    target = path + (f"?{query}" if query else "")
    send_headers = dict(headers or {})
    if sign:
        send_headers = sign_headers(method, f"http://{host}{target}", headers=send_headers,
                                    body=body if signed_body is None else signed_body, **sign_kwargs)
    send_headers["Host"] = host
    return requests.request(method, f"{server.endpoint}{target}", headers=send_headers, data=body,
                            allow_redirects=False, timeout=60)


# -- raw HTTP over a socket ---------------------------------------------------------

def read_http_response(sock: socket.socket, buffer: bytes = b"", head_only: bool = False
                       ) -> tuple[int, dict[str, str], bytes, bytes]:
    """Read one HTTP/1.1 response from ``sock``: (status, headers, body, leftover bytes)."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a full response head: {buffer!r}")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if head_only or 100 <= status < 200 or status in (204, 304):
        return status, headers, b"", rest
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length], rest[length:]


def raw_request_head(method: str, target: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# -- models ---------------------------------------------------------------------------

def utf8_sorted(keys) -> list[str]:
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def model_page(sorted_keys: list[str], prefix: str = "", delimiter: str = "", after: str | None = None,
               max_keys: int = 1000) -> tuple[list[str], list[str], bool]:
    """Brute-force S3 listing of one page: (keys, common prefixes, is_truncated).

    ``sorted_keys`` must be in UTF-8 byte order. Entries (keys and common prefixes)
    strictly after ``after`` count towards ``max_keys``.
    """
    keys: list[str] = []
    prefixes: list[str] = []
    entries = 0
    truncated = False
    after_b = after.encode() if after is not None else None
    for key in sorted_keys:
        if not key.startswith(prefix):
            continue
        if after_b is not None and key.encode() <= after_b:
            continue
        common = None
        if delimiter:
            pos = key.find(delimiter, len(prefix))
            if pos >= 0:
                common = key[: pos + len(delimiter)]
        if common is not None:
            if (prefixes and prefixes[-1] == common) or (after_b is not None and common.encode() <= after_b):
                continue
        if entries == max_keys:
            truncated = True
            break
        if common is None:
            keys.append(key)
        else:
            prefixes.append(common)
        entries += 1
    return keys, prefixes, truncated


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


def xfail_bug(reason: str):
    return pytest.mark.xfail(strict=True, reason=f"BUG: {reason}")
