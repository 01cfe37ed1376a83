"""A request's header section, read in one pass (for the pywsgi handler in worker.py).

pywsgi parses request headers with ``http.client.parse_headers``, which joins the
lines and runs the ``email`` package's parser over them: about 7% of a 1 KiB GET's
CPU. ``read_header_section`` reads the same lines with the same limits and splits
each one at its first colon.

It is also stricter where the email parser was silent. A line that is not
``name: value`` (no colon, or a name with spaces or other characters outside
RFC 9110's token) made the email parser treat the rest of the section as a body,
so the headers after it were dropped without a word; an obs-fold continuation
line was glued into the previous value. Both are refused now (RFC 9112 section
5: a server may reject either with a 400), so the headers a signature is checked
against are exactly the ones the client sent.
"""
from __future__ import annotations

import http.client
import re

MAX_LINE = http.client._MAXLINE  # 64 KiB, as http.client and pywsgi allowed
MAX_LINES = http.client._MAXHEADERS  # 100

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


class MalformedHeader(ValueError):
    """A header line that is not ``name: value``, or an obs-fold continuation."""


class TooManyHeaders(http.client.HTTPException):
    """More than ``MAX_LINES`` header lines (http.client's exception, as before)."""


class HeaderSection:
    """What pywsgi and gunicorn ask of a request's headers (the subset of
    ``http.client.HTTPMessage`` they use), over a list of (name, value) pairs in
    arrival order. Lookups ignore letter case; ``get`` answers the first value."""

    __slots__ = ("_headers", "status")

    def __init__(self, pairs: list[tuple[str, str]], status: str = "") -> None:
        self._headers = pairs
        self.status = status  # pywsgi's mark of a line over MAX_LINE: "Line too long"

    def get(self, name: str, default=None):
        name = name.lower()
        for key, value in self._headers:
            if len(key) == len(name) and key.lower() == name:
                return value
        return default

    getheader = get

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def __delitem__(self, name: str) -> None:
        name = name.lower()
        self._headers = [(k, v) for k, v in self._headers if k.lower() != name]

    def items(self) -> list[tuple[str, str]]:
        return list(self._headers)

    @property
    def headers(self):
        """Lines as pywsgi's environ builder reads them."""
        for key, value in self._headers:
            yield f"{key}: {value}\r\n"

    @property
    def typeheader(self):
        return self.get("content-type")


def read_header_section(rfile) -> HeaderSection:
    """Read header lines from ``rfile`` up to the empty line. Raises TooManyHeaders
    or MalformedHeader; a line over MAX_LINE answers an empty section marked
    ``status = "Line too long"``, as pywsgi's own factory did."""
    pairs = []
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            return HeaderSection([], "Line too long")
        if line in (b"\r\n", b"\n", b""):
            return HeaderSection(pairs)
        if len(pairs) >= MAX_LINES:
            raise TooManyHeaders(f"got more than {MAX_LINES} headers")
        text = line.decode("iso-8859-1")
        name, colon, value = text.partition(":")
        if not colon or not _TOKEN.match(name):
            raise MalformedHeader("obs-fold continuation line" if text[:1] in " \t" else
                                  "a header line is not 'name: value'")
        pairs.append((name, value.strip(" \t\r\n")))
