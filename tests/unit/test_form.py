"""The streaming multipart/form-data parser of PostObject (s3/form.py): boundaries
found across every read edge, boundary-like bytes inside the file kept, bounded
memory, and each malformed body refused with S3's error."""
from __future__ import annotations

import io
import random

import pytest

from bleepstore_app import errors
from bleepstore_app.s3 import form

BOUNDARY = b"----WebKitFormBoundary7MA4YWxkTrZu0gW"
CONTENT_TYPE = "multipart/form-data; boundary=" + BOUNDARY.decode()
# Bytes that look like the delimiter without being it, and its pieces at the edges.
TRICKY = (b"\r\n--" + BOUNDARY[:-1] + b"X" + b"\r\n-" + b"\r\n--" + BOUNDARY[:5] + b"--" + BOUNDARY
          + b"\r\r\n\n" + b"\r\n--" + BOUNDARY[:-1])


class Pieces(io.BytesIO):
    """A socket-like stream: at most ``limit`` bytes a read (random sizes with a seed)."""

    def __init__(self, data: bytes, limit: int, seed: int | None = None) -> None:
        super().__init__(data)
        self.limit, self.rng = limit, random.Random(seed) if seed is not None else None

    def read(self, n: int = -1) -> bytes:
        cap = self.rng.randint(1, self.limit) if self.rng else self.limit
        return super().read(cap if n is None or n < 0 else min(n, cap))


def build(fields: list[tuple[str, bytes]], file: bytes, after: bytes = b"", preamble: bytes = b"",
          filename: str = "photo.jpg") -> bytes:
    out = preamble + (b"\r\n" if preamble else b"")
    for name, value in fields:
        out += b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n'
        out += value + b"\r\n"
    out += (b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; filename="' + filename.encode()
            + b'"\r\nContent-Type: image/jpeg\r\n\r\n' + file + b"\r\n")
    out += after
    return out + b"--" + BOUNDARY + b"--\r\n"


def read_file(parsed: form.Form, n: int) -> bytes:
    out = bytearray()
    while chunk := parsed.file.read(n):
        assert len(chunk) <= n
        out += chunk
    assert parsed.file.read(n) == b""  # and stays at its end
    return bytes(out)


FIELDS = [("key", b"uploads/${filename}"), ("Content-Type", b"image/jpeg"), ("x-amz-meta-note", TRICKY[:40])]


@pytest.mark.parametrize("read_size", [1, 2, 3, 7, 41, 42, 43, 64, 1000, 65536])
def test_every_read_size_finds_the_same_fields_and_file(read_size):
    file = TRICKY * 3 + bytes(range(256)) + TRICKY
    body = build(FIELDS, file, preamble=b"ignored preamble")
    parsed = form.parse(Pieces(body, read_size), CONTENT_TYPE, read_size=read_size)
    assert parsed.fields == {"key": "uploads/${filename}", "content-type": "image/jpeg",
                             "x-amz-meta-note": TRICKY[:40].decode()}
    assert parsed.filename == "photo.jpg"
    assert read_file(parsed, max(1, read_size // 2)) == file
    assert parsed.file.size == len(file)


@pytest.mark.parametrize("seed", range(20))
def test_random_socket_reads_and_random_file(seed):
    rng = random.Random(seed)
    file = b"".join(rng.choice([TRICKY, b"\r\n", b"--", BOUNDARY, rng.randbytes(rng.randint(0, 300))])
                    for _ in range(60))
    while b"\r\n--" + BOUNDARY in file:  # a real delimiter cannot be inside a part (RFC 2046)
        file = file.replace(b"\r\n--" + BOUNDARY, b"\r\n-" + BOUNDARY)
    body = build(FIELDS, file)
    parsed = form.parse(Pieces(body, 97, seed), CONTENT_TYPE, read_size=rng.randint(1, 200))
    assert read_file(parsed, rng.randint(1, 500)) == file


def test_empty_file_and_file_ending_in_cr():
    for file in (b"", b"\r", b"\r\n", b"\r\n-", b"\r\n--" + BOUNDARY[:-1]):
        parsed = form.parse(Pieces(build([("key", b"k")], file), 5), CONTENT_TYPE, read_size=5)
        assert read_file(parsed, 3) == file


def test_fields_after_the_file_are_not_read():
    body = build([("key", b"k")], b"data", after=b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; '
                 b'name="acl"\r\n\r\npublic-read\r\n')
    parsed = form.parse(io.BytesIO(body), CONTENT_TYPE)
    assert read_file(parsed, 100) == b"data" and parsed.fields == {"key": "k"}


def test_memory_stays_bounded_while_the_file_streams():
    read_size = 4096
    file = (TRICKY + b"z" * 5000) * 400  # 2 MB
    parsed = form.parse(Pieces(build([("key", b"k")], file), read_size), CONTENT_TYPE, read_size=read_size)
    scanner = parsed.file._scanner
    most = 0
    out = bytearray()
    while chunk := parsed.file.read(1 << 20):
        most = max(most, len(scanner._buf) + len(chunk))
        out += chunk
    assert out == file
    assert most <= read_size + len(BOUNDARY) + 4


def test_boundary_quoted_and_transport_padding():
    body = build([("key", b"k")], b"x").replace(b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; "
                                                 b'name="key"', b"--" + BOUNDARY + b" \t\r\nContent-Disposition: "
                                                 b'form-data; name="key"', 1)
    parsed = form.parse(io.BytesIO(body), f'multipart/form-data; charset=utf-8; boundary="{BOUNDARY.decode()}"')
    assert parsed.fields == {"key": "k"} and read_file(parsed, 10) == b"x"


def test_filename_star_and_escaped_quotes():
    body = build([("key", b"k")], b"x").replace(b'filename="photo.jpg"',
                                                 b"filename=\"a\\\"b.txt\"; filename*=UTF-8''%C3%A9t%C3%A9.txt")
    assert form.parse(io.BytesIO(body), CONTENT_TYPE).filename == "\u00e9t\u00e9.txt"
    body = build([("key", b"k")], b"x", filename='say \\"hi\\".txt')
    assert form.parse(io.BytesIO(body), CONTENT_TYPE).filename == 'say "hi".txt'


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/mixed; boundary=x"])
def test_not_a_form_is_precondition_failed(content_type):
    with pytest.raises(errors.PreconditionFailed) as exc:
        form.parse(io.BytesIO(b""), content_type)
    assert exc.value.fields == {"Condition": "Bucket POST must be of the enclosure-type multipart/form-data"}


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=",
                                          "multipart/form-data; boundary=" + "x" * 71])
def test_bad_boundary_is_malformed(content_type):
    with pytest.raises(errors.MalformedPOSTRequest):
        form.parse(io.BytesIO(b""), content_type)


def test_truncated_bodies_are_malformed():
    body = build([("key", b"k")], b"data" * 100)
    for cut in (0, 10, len(BOUNDARY) + 8, body.index(b"data") - 3, len(body) - len(BOUNDARY) - 8):
        with pytest.raises(errors.MalformedPOSTRequest):
            parsed = form.parse(Pieces(body[:cut], 7), CONTENT_TYPE, read_size=7)
            read_file(parsed, 64)


def test_no_file_is_invalid_argument():
    body = b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="key"\r\n\r\nk\r\n--' + BOUNDARY + b"--\r\n"
    with pytest.raises(errors.InvalidArgument) as exc:
        form.parse(io.BytesIO(body), CONTENT_TYPE)
    assert exc.value.message == "POST requires exactly one file upload per request."


def test_non_utf8_field_name_or_value_is_malformed():
    for fields in ([("key", b"k\xff")], [("key", b"k"), ("x-amz-meta-\xe9", b"v")]):
        body = build([(n, v) for n, v in fields], b"x")
        if "\xe9" in fields[-1][0]:
            body = body.replace("x-amz-meta-\xe9".encode(), b"x-amz-meta-\xe9")
        with pytest.raises(errors.MalformedPOSTRequest):
            form.parse(io.BytesIO(body), CONTENT_TYPE)


def test_oversize_fields_are_refused():
    fits = form.parse(io.BytesIO(build([("key", b"k"), ("x-ignore-pad", b"p" * 20_000)], b"x")), CONTENT_TYPE)
    assert len(fits.fields["x-ignore-pad"]) == 20_000
    with pytest.raises(errors.MaxPostPreDataLengthExceededError):
        form.parse(io.BytesIO(build([("key", b"k"), ("x-ignore-pad", b"p" * 20 * 1024)], b"x")), CONTENT_TYPE)
    many = [(f"x-ignore-{i}", b"v") for i in range(400)]  # small fields, but their headers count too
    with pytest.raises(errors.MaxPostPreDataLengthExceededError):
        form.parse(io.BytesIO(build(many, b"x")), CONTENT_TYPE)
    with pytest.raises(errors.MaxPostPreDataLengthExceededError):  # one part header that never ends
        form.parse(io.BytesIO(b"--" + BOUNDARY + b"\r\nX-Long: " + b"a" * 30_000), CONTENT_TYPE)


def test_duplicate_field_and_nameless_part_are_refused():
    with pytest.raises(errors.InvalidArgument):
        form.parse(io.BytesIO(build([("key", b"a"), ("KEY", b"b")], b"x")), CONTENT_TYPE)
    body = build([("key", b"k")], b"x").replace(b'form-data; name="key"', b"attachment", 1)
    with pytest.raises(errors.MalformedPOSTRequest):
        form.parse(io.BytesIO(body), CONTENT_TYPE)


def test_socket_errors_become_s3_errors():
    class Broken:
        def __init__(self, exc):
            self.exc = exc

        def read(self, n):
            raise self.exc

    with pytest.raises(errors.RequestTimeout):
        form.parse(Broken(TimeoutError()), CONTENT_TYPE)
    with pytest.raises(errors.IncompleteBody):
        form.parse(Broken(ConnectionResetError()), CONTENT_TYPE)
