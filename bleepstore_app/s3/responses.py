"""The one place that turns a handler's result or an S3Error into HTTP."""
from __future__ import annotations

import errno
import logging
from http import HTTPStatus
from dataclasses import dataclass, field
from typing import Iterable

from flask import Response  # Flask would otherwise re-wrap every response (force_type)

from .. import errors
from . import xml

log = logging.getLogger(__name__)


class _S3Response(Response):
    """Werkzeug drops Last-Modified from a 304; S3 sends it (with the ETag).

    Werkzeug copies every response's headers before sending them, to fix up the
    few it rewrites. Our responses mostly carry none of those (render always sets
    Content-Length), so they go out as they are; the rest take Werkzeug's path."""

    def get_wsgi_response(self, environ):
        status = self.status_code
        if 200 <= status and status not in (204, 304) and _sent_as_is(self.headers):
            return self.get_app_iter(environ), self.status, self.headers.to_wsgi_list()
        return super().get_wsgi_response(environ)

    def get_wsgi_headers(self, environ):
        headers = super().get_wsgi_headers(environ)
        if self.status_code == 304 and "Last-Modified" in self.headers:
            headers["Last-Modified"] = self.headers["Last-Modified"]
        return headers


# The headers Werkzeug's get_wsgi_headers would change, besides a missing
# Content-Length (which it may compute).
_REWRITTEN = frozenset(("location", "content-location"))


def _sent_as_is(headers) -> bool:
    has_length = False
    for name, _ in headers:
        lowered = name.lower()
        if lowered in _REWRITTEN:
            return False
        if lowered == "content-length":
            has_length = True
    return has_length


@dataclass
class S3Result:
    """What a handler returns: a status, headers, and an XML document or a stream."""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    xml: str | None = None
    stream: Iterable[bytes] | None = None
    length: int | None = None  # Content-Length of ``stream`` (also sent for HEAD)


def render(result: S3Result, method: str, request_id: str) -> Response:
    headers = _common_headers(request_id)
    headers.update(result.headers)
    if result.xml is not None:
        body = result.xml.encode("utf-8")
        headers["Content-Type"] = "application/xml"
        headers["Content-Length"] = str(len(body))
        return _S3Response([] if method == "HEAD" else [body], _status(result.status), headers)
    if result.length is not None:
        headers["Content-Length"] = str(result.length)
    elif result.stream is None:
        headers["Content-Length"] = "0"
    stream = result.stream
    if method == "HEAD":
        if stream is not None and hasattr(stream, "close"):
            stream.close()
        stream = None
    elif stream is not None and result.length is not None:
        stream = _exactly(stream, result.length, request_id)
    return _S3Response(stream if stream is not None else [], _status(result.status), headers,
                    direct_passthrough=True)


def _exactly(stream: Iterable[bytes], length: int, request_id: str):
    """``stream``, which must come to ``length`` bytes (the Content-Length sent).
    If it breaks off or runs short (lost data, a backend failing mid-read), the
    connection is cut: the client sees an incomplete response at once instead of
    waiting for bytes that never come, and the next request cannot be misread."""
    sent = 0
    try:
        for chunk in stream:
            sent += len(chunk)
            yield chunk
    except Exception as exc:
        log.error("response body of request %s failed after %d of %d bytes: %r", request_id, sent, length, exc)
        raise _cut() from None
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    if sent != length:
        log.error("response body of request %s ended after %d of %d bytes", request_id, sent, length)
        raise _cut()


def _cut() -> ConnectionResetError:
    # The WSGI server treats a reset as the end of the connection, quietly.
    return ConnectionResetError(errno.ECONNRESET, "response cut short")


def render_error(err: errors.S3Error, method: str, resource: str, request_id: str) -> Response:
    headers = _common_headers(request_id)
    headers.update(err.headers)
    if method == "HEAD":
        headers["Content-Length"] = "0"
        return _S3Response([], _status(err.status), headers)
    body = xml.error_document(err, resource, request_id).encode("utf-8")
    headers["Content-Type"] = "application/xml"
    headers["Content-Length"] = str(len(body))
    return _S3Response([body], _status(err.status), headers)


def _common_headers(request_id: str) -> dict[str, str]:
    return {"x-amz-request-id": request_id, "x-amz-id-2": request_id_2(request_id)}


def request_id_2(request_id: str) -> str:
    # AWS's x-amz-id-2 is an opaque host id; derive it so it costs nothing.
    return "bleepstore/" + request_id


_STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}


def _status(code: int) -> str:
    """'403 Forbidden' as S3 writes it (Werkzeug would say '403 FORBIDDEN')."""
    return _STATUS_LINES.get(code, str(code))
