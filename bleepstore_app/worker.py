"""The gunicorn worker class: gevent's pywsgi server, held to the HTTP behaviour
S3 clients rely on.

gevent's pywsgi handler reads and answers a request with markedly less CPU than
gunicorn's own parser (1 KiB HEAD at 16 connections, 2 workers: about 2,200 ->
3,000 requests/s; bench/RESULTS.md), so the workers run it. Where it differs from
gunicorn's worker in a way clients notice, this module puts the old behaviour back:

- ``Expect: 100-continue`` (in any letter case) is answered as soon as the request
  head is read. pywsgi sends it only for the lower-case spelling, and only when the
  application first reads the body; an error answered before that (a bad ACL
  header, a wrong signature) would leave the client's body unsent while the server
  discards "the body" from the next request's bytes.
- Request and header lines up to 64 KiB (gunicorn was configured without a
  request-line limit): an S3 key is up to 1,024 UTF-8 bytes, percent-encoded up
  to three bytes each, and presigned URLs add their query parameters.
- A body shorter than its Content-Length makes pywsgi raise an IOError (gunicorn
  gave a short read); the body reader (auth/payload.py) answers either with
  IncompleteBody, and a mid-body idle timeout with RequestTimeout.
- ``wsgi.url_scheme`` from gunicorn's ``secure_scheme_headers`` (nginx's
  X-Forwarded-Proto) when the peer is in ``forwarded_allow_ips``, so absolute URLs
  in responses name the TLS endpoint a client used.
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

import gevent
from gevent import pywsgi
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler

pywsgi.MAX_REQUEST_LINE = 64 * 1024  # read at call time by pywsgi, for request and header lines

_SERVER_HEADER = (b"Server", b"BleepStore")
SMALL_RESPONSE = 64 * 1024  # a first body chunk up to this size goes out with the headers


class S3Handler(PyWSGIHandler):
    """One client connection: requests read and answered in turn (keep-alive)."""

    gunicorn_cfg = None  # set by the worker: gunicorn's settings
    waiting: set = set()  # greenlets of connections between requests (nothing in flight)

    def handle(self):
        if self.gunicorn_cfg.keepalive:
            self.socket.settimeout(self.gunicorn_cfg.keepalive)
        super().handle()

    def handle_one_request(self):
        # Let the worker's other connections run first: a client that sends its next
        # request at once would otherwise find it already readable and keep this
        # greenlet (and the worker) to itself, starving the others for whole runs.
        gevent.sleep(0)
        return super().handle_one_request()

    def read_requestline(self):
        me = gevent.getcurrent()
        self.waiting.add(me)
        try:
            return super().read_requestline()
        finally:
            self.waiting.discard(me)

    def get_environ(self):
        env = super().get_environ()
        if env.get("HTTP_EXPECT", "").lower() == "100-continue":
            # pywsgi gives its input the socket only for the exact spelling; the
            # header's value is case-insensitive (RFC 9110), so hand it over here.
            if self.wsgi_input.socket is None:  # nothing read or sent yet: this runs first
                self.wsgi_input.socket = self.socket
            self.wsgi_input._send_100_continue()
        for header, secure_value in self.gunicorn_cfg.secure_scheme_headers.items():
            value = env.get("HTTP_" + header.upper().replace("-", "_"))
            if value is not None and self._peer_is_trusted_proxy():
                env["wsgi.url_scheme"] = "https" if value == secure_value else "http"
        return env

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
