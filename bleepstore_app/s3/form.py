"""multipart/form-data of a POST Object (browser form upload), parsed as it streams.

The text fields before the ``file`` field are read into a dict (bounded: AWS allows
20 KB of form data before the file, MaxPostPreDataLengthExceededError beyond);
the file part is then handed out as a reader whose ``read(n)`` returns its bytes
as they arrive and ``b""`` at the closing delimiter, holding at most one read of
the socket plus a delimiter's length in memory. Fields after the file are ignored,
as AWS does ("the file or content must be the last field in the form").

RFC 7578 (form-data) over RFC 2046 section 5.1.1: a part ends at CRLF "--"
boundary; the first delimiter may start the body without the CRLF, so the
scanner starts with a CRLF already in its buffer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from .. import errors

MAX_FIELDS_BYTES = 20 * 1024  # names, values and part headers of every field before the file
READ_SIZE = 512 * 1024  # socket reads; the file's pieces stay above PARALLEL_HASH_MIN (auth/payload.py)
MAX_PREAMBLE = 1024
_ENCLOSURE = "Bucket POST must be of the enclosure-type multipart/form-data"
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a multipart/form-data Content-Type; anything else is AWS's
    412 for a POST that is not a form upload."""
    media, _, params = (content_type or "").partition(";")
    if media.strip().lower() != "multipart/form-data":
        raise errors.PreconditionFailed(Condition=_ENCLOSURE)
    found = _params(";" + params)
    boundary = found.get("boundary", "")
    if not 1 <= len(boundary) <= 70 or not boundary.isascii():  # RFC 2046: 1 to 70 characters
        raise errors.MalformedPOSTRequest()
    return boundary.encode("ascii")


def _params(text: str) -> dict[str, str]:
    """``; name=value; name="quoted \\" value"`` as a dict (names lower-cased)."""
    out: dict[str, str] = {}
    for m in _PARAM.finditer(text):
        value = m.group(2).strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out.setdefault(m.group(1).lower(), value)
    return out


@dataclass
class Form:
    """The fields before the file (names lower-cased: AWS form field names are not
    case-sensitive), and the file part."""
    fields: dict[str, str]
    file: "FilePart"
    filename: str


def parse(stream, content_type: str | None, read_size: int = READ_SIZE,
          max_fields_bytes: int = MAX_FIELDS_BYTES) -> Form:
    """Read ``stream`` (wsgi.input) up to the start of the file part's bytes."""
    scanner = _Scanner(stream, boundary_of(content_type), read_size)
    budget = [max_fields_bytes]
    scanner.skip_part(MAX_PREAMBLE)  # the preamble, before the first delimiter
    fields: dict[str, str] = {}
    while scanner.next_part():
        disposition = scanner.part_headers(budget).get("content-disposition", "")
        kind, _, rest = disposition.partition(";")
        params = _params(";" + rest)
        if kind.strip().lower() != "form-data" or "name" not in params:
            raise errors.MalformedPOSTRequest()
        name = params["name"].lower()
        if name == "file":
            return Form(fields, FilePart(scanner), _filename(params))
        value = _text(scanner.part_value(budget))
        if name in fields:
            raise errors.InvalidArgument(f"The form field {name} is given twice.", ArgumentName=name)
        fields[name] = value
    raise errors.InvalidArgument("POST requires exactly one file upload per request.", ArgumentName="file",
                                 ArgumentValue="0")


def _filename(params: dict[str, str]) -> str:
    extended = params.get("filename*")  # RFC 5987: charset'language'percent-encoded
    if extended is not None:
        charset, _, rest = extended.partition("'")
        _, _, encoded = rest.partition("'")
        if charset.lower() == "utf-8":
            try:
                return unquote(encoded, errors="strict")
            except UnicodeDecodeError:
                raise errors.MalformedPOSTRequest() from None
    return params.get("filename", "")


def _text(raw: bytes) -> str:
    """A field's bytes as text: UTF-8 only, never replaced (two different byte
    strings must not become the same key or the same policy value)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.MalformedPOSTRequest("A form field is not valid UTF-8.") from None


class FilePart:
    """The file field's bytes: ``read(n)`` gives up to n of them, ``b""`` at its end."""

    def __init__(self, scanner: "_Scanner") -> None:
        self._scanner = scanner
        self._done = False
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        if self._done:
            return b""
        data = self._scanner.part_data(n if n is not None and n > 0 else self._scanner.read_size)
        if not data:
            self._done = True
            self._scanner.end_part()
        self.size += len(data)
        return data


class _Scanner:
    """A buffer over the body that finds delimiters across read edges."""

    def __init__(self, stream, boundary: bytes, read_size: int) -> None:
        self._stream = stream
        self._delimiter = b"\r\n--" + boundary
        self._buf = bytearray(b"\r\n")
        self._eof = False
        self._hit = -1  # index of the delimiter in the buffer, once found
        self._scanned = 0  # bytes of the buffer searched without finding one
        self.read_size = read_size

    def _fill(self) -> None:
        if self._eof:
            raise errors.MalformedPOSTRequest()  # the body ended inside a part
        try:
            data = self._stream.read(self.read_size)
        except TimeoutError:
            raise errors.RequestTimeout() from None
        except OSError:
            raise errors.IncompleteBody() from None
        if not data:
            self._eof = True
            raise errors.MalformedPOSTRequest()
        self._buf += data

    def _consume(self, n: int) -> bytes:
        out = bytes(self._buf[:n])
        del self._buf[:n]
        self._scanned = max(self._scanned - n, 0)
        if self._hit >= 0:
            self._hit -= n
        return out

    def _locate(self) -> int:
        if self._hit < 0:
            start = max(self._scanned - len(self._delimiter) + 1, 0)
            self._hit = self._buf.find(self._delimiter, start)
            self._scanned = len(self._buf)
        return self._hit

    def part_data(self, n: int) -> bytes:
        """Up to n bytes of the current part; b"" when its delimiter is next."""
        while True:
            hit = self._locate()
            if hit == 0:
                return b""
            # Without a delimiter in sight, keep a tail that could be its start.
            available = hit if hit > 0 else len(self._buf) - len(self._delimiter) + 1
            if available > 0:
                return self._consume(min(n, available))
            self._fill()

    def skip_part(self, limit: int) -> None:
        """Discard the rest of the current part (at most ``limit`` bytes)."""
        while chunk := self.part_data(self.read_size):
            limit -= len(chunk)
            if limit < 0:
                raise errors.MalformedPOSTRequest()
        self.end_part()

    def part_value(self, budget: list[int]) -> bytes:
        """The whole current part, counted against the fields' budget."""
        pieces = []
        while chunk := self.part_data(self.read_size):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise errors.MaxPostPreDataLengthExceededError()
            pieces.append(chunk)
        self.end_part()
        return b"".join(pieces)

    def end_part(self) -> None:
        """Step over the delimiter that ends the current part."""
        self._consume(len(self._delimiter))
        self._hit, self._scanned = -1, 0

    def _need(self, n: int) -> None:
        while len(self._buf) < n:
            self._fill()

    def next_part(self) -> bool:
        """After a delimiter: True when another part follows, False at the close."""
        self._need(2)
        if self._buf[:2] == b"--":
            return False
        while True:  # transport padding: spaces and tabs before the CRLF
            self._need(2)
            if self._buf[:2] == b"\r\n":
                self._consume(2)
                return True
            if self._buf[0] not in b" \t":
                raise errors.MalformedPOSTRequest()
            self._consume(1)

    def part_headers(self, budget: list[int]) -> dict[str, str]:
        """The part's header lines (names lower-cased), counted against the budget."""
        self._need(2)
        if self._buf[:2] == b"\r\n":  # no headers at all
            self._consume(2)
            return {}
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            if len(self._buf) > budget[0]:
                raise errors.MaxPostPreDataLengthExceededError()
            self._fill()
        budget[0] -= end + 4
        if budget[0] < 0:
            raise errors.MaxPostPreDataLengthExceededError()
        block = _text(self._consume(end + 4)[:end])
        self._hit, self._scanned = -1, 0
        headers: dict[str, str] = {}
        for line in block.split("\r\n"):
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise errors.MalformedPOSTRequest()
            headers[name.strip().lower()] = value.strip()
        return headers
