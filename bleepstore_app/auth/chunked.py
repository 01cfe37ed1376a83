"""The aws-chunked body encoding, decoded and verified while it streams.

AWS S3 API Reference, "Signature Calculations for the Authorization Header:
Transferring Payload in Multiple Chunks (Chunked Upload)" and "... Including
Trailing Headers". Each chunk is ``hex-size[;chunk-signature=sig]\\r\\n data \\r\\n``;
a zero-size chunk ends the data, optionally followed by trailer lines
(``x-amz-checksum-crc32:...``, ``x-amz-trailer-signature:...``) and an empty line.
In the signed modes every chunk signature chains from the previous one, starting
at the request's own signature.
"""
from __future__ import annotations

import hashlib
import hmac

from .. import errors
from .sigv4 import EMPTY_SHA256, SignedRequest, sign

MAX_LINE = 4096
READ_SIZE = 256 * 1024


class AwsChunkedReader:
    """Decoded bytes of an aws-chunked body; ``read`` returns b"" only after the
    final chunk and the trailer (if any) have been read and verified."""

    def __init__(self, source, mode: str, signed: SignedRequest | None, trailer_names: tuple[str, ...] = ()):
        self._source = source
        self._signed_chunks = mode.startswith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
        self._has_trailer = mode.endswith("-TRAILER")
        self._signed = signed
        self._previous = signed.signature if signed else ""
        self._trailer_names = tuple(n.lower() for n in trailer_names)
        self._buffer = bytearray()
        self._chunk_left = 0
        self._chunk_sig: str | None = None
        self._chunk_hash = None
        self._done = False
        self.trailers: dict[str, str] = {}

    # -- raw input -----------------------------------------------------------

    def _fill(self) -> bool:
        data = self._source.read(READ_SIZE)
        if not data:
            return False
        self._buffer += data
        return True

    def _line(self) -> str:
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[:end + 2]
                return line.decode("latin-1")
            if len(self._buffer) > MAX_LINE:
                raise errors.InvalidRequest("Malformed aws-chunked body: a chunk header line is too long.")
            if not self._fill():
                raise errors.IncompleteBody()

    def _take(self, n: int) -> bytes:
        if not self._buffer and not self._fill():
            raise errors.IncompleteBody()
        data = bytes(self._buffer[:n])
        del self._buffer[:len(data)]
        return data

    # -- chunks --------------------------------------------------------------

    def _start_chunk(self) -> None:
        header = self._line()
        size_text, _, ext = header.partition(";")
        try:
            size = int(size_text.strip(), 16)
        except ValueError:
            raise errors.InvalidRequest("Malformed aws-chunked body: bad chunk size.") from None
        self._chunk_sig = None
        if self._signed_chunks:
            name, _, value = ext.partition("=")
            if name.strip() != "chunk-signature" or not value:
                raise errors.InvalidRequest("Malformed aws-chunked body: missing chunk-signature.")
            self._chunk_sig = value.strip()
            self._chunk_hash = hashlib.sha256()
        self._chunk_left = size
        if size == 0:
            self._verify_chunk(EMPTY_SHA256)
            self._finish()

    def _end_chunk(self) -> None:
        if self._line() != "":
            raise errors.InvalidRequest("Malformed aws-chunked body: chunk data longer than its size.")
        if self._chunk_hash is not None:
            self._verify_chunk(self._chunk_hash.hexdigest())

    def _verify_chunk(self, data_hash: str) -> None:
        if not self._signed_chunks:
            return
        s = self._signed
        text = "\n".join(("AWS4-HMAC-SHA256-PAYLOAD", s.amz_date, s.scope, self._previous, EMPTY_SHA256, data_hash))
        expected = sign(s.signing_key, text)
        if not hmac.compare_digest(expected, self._chunk_sig or ""):
            raise errors.SignatureDoesNotMatch("The chunk signature does not match the signature we calculated.")
        self._previous = expected

    def _finish(self) -> None:
        """After the zero-size chunk: trailers, then the closing empty line."""
        if self._has_trailer:
            canonical = []
            trailer_sig = None
            while (line := self._line()) != "":
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip()
                if name == "x-amz-trailer-signature":
                    trailer_sig = value
                    continue
                # Only trailers named in the (signed) x-amz-trailer header: with none
                # declared, none may come.
                if name not in self._trailer_names:
                    raise errors.InvalidRequest(f"The trailer {name} was not declared in x-amz-trailer.")
                self.trailers[name] = value
                canonical.append(f"{name}:{value}\n")
            missing = [n for n in self._trailer_names if n not in self.trailers]
            if missing:
                raise errors.IncompleteBody(f"The trailer {missing[0]} declared in x-amz-trailer was not sent.")
            if self._signed_chunks:
                s = self._signed
                digest = hashlib.sha256("".join(canonical).encode()).hexdigest()
                text = "\n".join(("AWS4-HMAC-SHA256-TRAILER", s.amz_date, s.scope, self._previous, digest))
                if not hmac.compare_digest(sign(s.signing_key, text), trailer_sig or ""):
                    raise errors.SignatureDoesNotMatch("The trailer signature does not match.")
        else:
            # Tolerate a missing final CRLF: some clients end right after the last chunk.
            if self._buffer or self._fill():
                if self._line() != "":
                    raise errors.InvalidRequest("Malformed aws-chunked body: data after the final chunk.")
        self._done = True

    # -- the reader ------------------------------------------------------------

    def read(self, n: int = -1) -> bytes:
        if self._done:
            return b""
        if self._chunk_left == 0:
            self._start_chunk()
            if self._done:
                return b""
        want = self._chunk_left if n is None or n < 0 else min(n, self._chunk_left)
        data = self._take(want)
        self._chunk_left -= len(data)
        if self._chunk_hash is not None:
            self._chunk_hash.update(data)
        if self._chunk_left == 0:
            self._end_chunk()
        return data

    def finish(self) -> dict[str, str]:
        """Read through to the end of the body (final chunk, trailer) and return the trailers."""
        if self.read(READ_SIZE):
            raise errors.IncompleteBody("The decoded body is longer than x-amz-decoded-content-length.")
        return self.trailers
