"""The gunicorn worker class: gevent's pywsgi server, held to the HTTP behaviour
S3 clients rely on.

gevent's pywsgi handler reads and answers a request with markedly less CPU than
gunicorn's own parser (1 KiB HEAD at 16 connections, 2 workers: about 2,200 ->
3,000 requests/s; bench/RESULTS.md), so the workers run it. Where it differs from
gunicorn's worker in a way clients notice, this module puts the old behaviour back:

- ``Expect: 100-continue`` (in any letter case; pywsgi knew only the lower-case
  spelling) is answered on the application's first body read, which comes after
  authentication and the permission check: a refused upload (bad signature, no
  WRITE permission, missing bucket, bad header) gets its 403/404/400 before the
  client sends a byte of its body. Such a final answer, sent while the client still
  holds its body back, carries ``Connection: close``, and the connection closes
  after it instead of waiting for a body that will not come (RFC 9110 10.1.1).
- Requests the HTTP layer refuses (a request line over 64 KiB: 414; a header line
  over 64 KiB or more than 100 header lines: RequestHeaderSectionTooLarge; a
  malformed request line: InvalidRequest; a Content-Length that is not one
  non-negative integer: InvalidArgument; a Transfer-Encoding other than chunked:
  501 NotImplemented) are answered as S3 XML errors, with one log line and no
  traceback, and the connection closes (gently: see ``_close_gently``).
- Request and header lines up to 64 KiB (gunicorn was configured without a
  request-line limit): an S3 key is up to 1,024 UTF-8 bytes, percent-encoded up
  to three bytes each, and presigned URLs add their query parameters.
- A body shorter than its Content-Length makes pywsgi raise an IOError (gunicorn
  gave a short read); the body reader (auth/payload.py) answers either with
  IncompleteBody, and a mid-body idle timeout with RequestTimeout.
- ``wsgi.url_scheme`` from gunicorn's ``secure_scheme_headers`` (nginx's
  X-Forwarded-Proto) when the peer is in ``forwarded_allow_ips``, so absolute URLs
  in responses name the TLS endpoint a client used; likewise the client address
  from X-Forwarded-For (``bleepstore.client_ip``, a bucket policy's aws:SourceIp).
- ``Server: BleepStore`` on every response.
- A connection idle for ``keepalive`` seconds (between requests or in the middle
  of a body) is closed.
- A graceful stop (SIGTERM) closes connections that are only waiting for their next
  request, so it ends when the running requests end rather than after
  ``graceful_timeout`` (pywsgi would keep idle keep-alive connections open).
- A response's head and a first body chunk of up to 64 KiB leave in one send (pywsgi
  makes two: two syscalls and two TCP segments per small GET).
- Fair turns: before reading a connection's next request the handler yields, so
  one busy keep-alive client cannot hold the worker (1 KiB GET at 16 connections:
  p99 about 300 ms -> 75 ms, throughput no lower).
"""
from __future__ import annotations

import ipaddress
import logging
import os
import socket
import time
from http import HTTPStatus

import gevent
from gevent import pywsgi
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler

from . import errors, header_section
from .header_section import TooManyHeaders, read_header_section
from .logsafe import escape
from .s3 import xml

pywsgi.MAX_REQUEST_LINE = 64 * 1024  # read at call time by pywsgi, for the request line and chunk lines
MAX_HEADER_LINE = header_section.MAX_LINE  # 64 KiB a line, 100 lines

_SERVER_HEADER = (b"Server", b"BleepStore")
SMALL_RESPONSE = 64 * 1024  # a first body chunk up to this size goes out with the headers
LINGER_SECONDS = 2.0  # after a refusal: how long to keep reading (and dropping) what the client still sends

log = logging.getLogger("bleepstore.http")


class _Refused(ValueError):
    """A request the HTTP layer refuses, with the S3 error to answer
    (a ValueError: pywsgi then treats it as the client's fault, no traceback)."""

    def __init__(self, error: errors.S3Error) -> None:
        super().__init__(error.message)
        self.error = error


class _Input(pywsgi.Input):
    """The body of an ``Expect: 100-continue`` request: the interim 100 goes out
    on the first read (pywsgi's own mechanism), so after authentication and the
    permission check, which come first."""

    __slots__ = ()

    def _discard(self):
        if self.socket is None:  # the 100 Continue went out: the client is sending its body
            super()._discard()
        # Otherwise the client holds its body back, waiting for a 100 that will never
        # come: nothing to discard, and the connection closes (see start_response).


def _check_framing(headers) -> None:
    """Content-Length and Transfer-Encoding as RFC 9112 allows them, or an S3 error:
    a message whose length is ambiguous cannot be read safely."""
    lengths, codings = set(), []
    for name, value in headers._headers:  # one pass (get_all would make two); most names have neither length
        size = len(name)
        if size == 14 and name.lower() == "content-length":
            lengths.add(value.strip())
        elif size == 17 and name.lower() == "transfer-encoding":
            codings.append(value)
    if len(lengths) > 1:
        raise _Refused(errors.InvalidArgument("Conflicting Content-Length headers.", ArgumentName="Content-Length",
                                              ArgumentValue=_printable(", ".join(sorted(lengths)))))
    for value in lengths:
        if not (value.isascii() and value.isdigit()):
            raise _Refused(errors.InvalidArgument("Content-Length is not a non-negative integer.",
                                                  ArgumentName="Content-Length", ArgumentValue=_printable(value)))
    if codings and ",".join(codings).strip().lower() != "chunked":
        raise _Refused(errors.NotImplemented("A header you provided implies functionality that is not implemented",
                                             Header="Transfer-Encoding"))


def _printable(text: str | None, limit: int = 1024) -> str | None:
    """Client text safe to echo in an error document (XML 1.0 forbids most control
    characters), or None."""
    if text and len(text) <= limit and text.isascii() and text.isprintable():
        return text
    return None


def _error_parts(err: errors.S3Error, resource: str, head: bool) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status line, headers and body of an S3 error answered by the HTTP layer; the
    connection closes after it (what follows on it cannot be trusted)."""
    from .s3.responses import request_id_2  # Flask: imported on the first refusal only
    request_id = os.urandom(8).hex().upper()
    body = b"" if head else xml.error_document(err, resource, request_id).encode("utf-8")
    headers = [("x-amz-request-id", request_id), ("x-amz-id-2", request_id_2(request_id)),
               ("Content-Type", "application/xml"), ("Content-Length", str(len(body))), ("Connection", "close")]
    return f"{err.status} {HTTPStatus(err.status).phrase}", headers, body


def _uri_too_long() -> errors.S3Error:
    err = errors.InvalidURI("The request line is longer than the server accepts.",
                            MaxSizeAllowed=pywsgi.MAX_REQUEST_LINE)
    err.status = 414  # no S3 code names it; the HTTP status says what happened
    return err


class S3Handler(PyWSGIHandler):
    """One client connection: requests read and answered in turn (keep-alive)."""

    gunicorn_cfg = None  # set by the worker: gunicorn's settings
    waiting: set = set()  # greenlets of connections between requests (nothing in flight)

    def handle(self):
        if self.gunicorn_cfg.keepalive:
            self.socket.settimeout(self.gunicorn_cfg.keepalive)
        super().handle()

    _unread_body = False  # set when a response goes out while the client still holds its body back

    def handle_one_request(self):
        # Let the worker's other connections run first: a client that sends its next
        # request at once would otherwise find it already readable and keep this
        # greenlet (and the worker) to itself, starving the others for whole runs.
        gevent.sleep(0)
        result = super().handle_one_request()
        if result.__class__ is tuple:  # refused before the application: (status, whole response)
            status, response = result
            if status == "414":  # pywsgi's own answer, sent as S3 XML instead
                log.info("refused a request from %s: request line over %d bytes", self._peer(),
                         pywsgi.MAX_REQUEST_LINE)
                response = self._raw_error(_uri_too_long(), "/", False)
            try:
                self.socket.sendall(response)
            except OSError:
                pass
            self._close_gently()
            return None
        if self._unread_body:
            self._close_gently()
        return result

    def read_request(self, raw_requestline):
        # A refusal must not describe this connection's previous request.
        self.command = self.path = None
        return super().read_request(raw_requestline)

    def MessageClass(self, rfile, *_):  # noqa: N802 (pywsgi's name)
        """The request headers (header_section.py, in place of pywsgi's http.client
        parse), with their limits and framing checked: each failure is an S3 error,
        not a bare 400. A malformed line is a ValueError: InvalidRequest."""
        try:
            headers = read_header_section(rfile)
        except TooManyHeaders:
            raise _Refused(errors.RequestHeaderSectionTooLarge("Your request has too many header fields.")) from None
        if headers.status:  # pywsgi's mark of a header line over MAX_HEADER_LINE
            raise _Refused(errors.RequestHeaderSectionTooLarge("A request header line is longer than the server "
                                                               "accepts.", MaxSizeAllowed=MAX_HEADER_LINE))
        _check_framing(headers)
        return headers

    def _handle_client_error(self, ex):
        """pywsgi's hook for a request it cannot parse: an S3 error document and one
        log line (pywsgi would print a traceback for some, and answer an empty 400)."""
        err = ex.error if isinstance(ex, _Refused) else errors.InvalidRequest(
            "The request line or header section is malformed.")
        log.info("refused a request from %s: %s: %s", self._peer(), err.code, escape(str(ex)))
        path = (self.path or "/").partition("?")[0]
        return str(err.status), self._raw_error(err, _printable(path) or "/", self.command == "HEAD")

    def _send_error_response_if_possible(self, error_code):
        # pywsgi's plain-text 400 (a body it could not read) and 500, as S3 XML.
        if self.response_length:
            self.close_connection = True
            return
        err = errors.InternalError() if error_code >= 500 else errors.InvalidRequest(
            "The request body is malformed.")
        status, headers, body = _error_parts(err, "/", self.command == "HEAD")
        try:
            self.start_response(status, headers)
            self.write(body)
        except OSError:
            self.close_connection = True

    def _raw_error(self, err: errors.S3Error, resource: str, head: bool) -> bytes:
        status, headers, body = _error_parts(err, resource, head)
        lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers]
        lines += ["Server: BleepStore", "Date: " + pywsgi.format_date_time(time.time()).decode("latin-1")]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def _close_gently(self):
        """Close after a response the client may not expect to end the connection:
        half-close, read (and drop) what it still sends for a moment, then close.
        Closing with its bytes unread would reset the connection, and a reset can
        destroy the response before the client reads it (RFC 9112 section 9.6)."""
        self._unread_body = False
        sock = self.socket
        deadline = time.monotonic() + LINGER_SECONDS
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(LINGER_SECONDS)
            while time.monotonic() < deadline and sock.recv(65536):
                pass
        except OSError:
            pass

    def _peer(self) -> str:
        address = self.client_address
        return address[0] if isinstance(address, tuple) else str(address or "-")

    def read_requestline(self):
        me = gevent.getcurrent()
        self.waiting.add(me)
        try:
            return super().read_requestline()
        finally:
            self.waiting.discard(me)

    def get_environ(self):
        env = super().get_environ()
        if "HTTP_EXPECT" in env:
            self._expect(env)
        for header, secure_value in self.gunicorn_cfg.secure_scheme_headers.items():
            value = env.get("HTTP_" + header.upper().replace("-", "_"))
            if value is not None and self._peer_is_trusted_proxy():
                env["wsgi.url_scheme"] = "https" if value == secure_value else "http"
        forwarded = env.get("HTTP_X_FORWARDED_FOR")
        if forwarded and self._peer_is_trusted_proxy():
            # The address the trusted proxy saw (it appends it last): what a bucket
            # policy's aws:SourceIp means. From any other peer the header is ignored.
            env["bleepstore.client_ip"] = forwarded.rsplit(",", 1)[-1].strip()
        return env

    def _expect(self, env: dict) -> None:
        """``Expect: 100-continue``, in any letter case (RFC 9110; pywsgi knows only
        the lower-case one): the 100 goes out on the application's first body read,
        after authentication and the permission check. HTTP/1.0 clients cannot ask
        for it (the RFC says to ignore it)."""
        if env["wsgi.input"] is not self.wsgi_input:
            return  # an upgrade request: pywsgi hands over the raw socket file
        if env["HTTP_EXPECT"].lower() != "100-continue" or self.request_version != "HTTP/1.1":
            self.wsgi_input.socket = None
            return
        current = self.wsgi_input
        self.wsgi_input = env["wsgi.input"] = _Input(self.rfile, current.content_length, socket=self.socket,
                                                     chunked_input=current.chunked_input)
        if not current.chunked_input and not current.content_length:
            # No body to hold back: answer at once. A final answer without the 100
            # would also be allowed, but botocore then leaves part of it unread on a
            # kept-alive connection and misreads the next response (a read timeout).
            self.wsgi_input._send_100_continue()

    def _peer_is_trusted_proxy(self) -> bool:
        cfg = self.gunicorn_cfg
        if not isinstance(self.client_address, tuple) or "*" in cfg.forwarded_allow_ips:
            return True  # a Unix socket, or every peer trusted
        try:
            ip = ipaddress.ip_address(self.client_address[0])
        except ValueError:
            return False
        return any(ip in network for network in cfg.forwarded_allow_networks())

    def log_request(self):
        pass  # the access log is BleepStore's own (ops/metrics.py)

    _held: bytearray | None = None  # what _sendall collects while headers and a small body are joined

    def _write_with_headers(self, data):
        # pywsgi sends the head and the first body chunk in two sendall calls: two
        # syscalls and two TCP segments for every small GET. Join them.
        if len(data) > SMALL_RESPONSE:
            return super()._write_with_headers(data)
        self._held = bytearray()
        try:
            super()._write_with_headers(data)
        finally:
            held, self._held = self._held, None
        self._sendall(held)

    def _sendall(self, data):
        if self._held is not None:
            self._held += data
        else:
            super()._sendall(data)

    def start_response(self, status, headers, exc_info=None):
        write = super().start_response(status, headers, exc_info)
        self.response_headers.append(_SERVER_HEADER)
        body = self.wsgi_input
        if body.socket is not None and (body.chunked_input or (body.content_length or 0) > body.position):
            # A final answer before the 100 Continue (a refusal, mostly): the client
            # will not send its body, so there is nothing to read past, and the
            # connection closes after this response (RFC 9110 section 10.1.1).
            if all(name.lower() != b"connection" for name, _ in self.response_headers):
                self.response_headers.append((b"Connection", b"close"))
            self.close_connection = self._unread_body = True
        return write


class S3Worker(GeventPyWSGIWorker):
    wsgi_handler = S3Handler

    def init_process(self):
        S3Handler.gunicorn_cfg = self.cfg
        super().init_process()

    def handle_exit(self, sig, frame):
        super().handle_exit(sig, frame)  # stop accepting; running requests may finish
        gevent.spawn(self._close_waiting_connections)

    @staticmethod
    def _close_waiting_connections():
        while True:  # until the process exits: connections accepted meanwhile too
            for greenlet in list(S3Handler.waiting):
                greenlet.kill(block=False)
            gevent.sleep(0.2)
