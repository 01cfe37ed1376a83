"""The worker's header-section reader against http.client's, which it replaced."""
import http.client
import io

import pytest

from bleepstore_app.header_section import MAX_LINE, MAX_LINES, MalformedHeader, TooManyHeaders, read_header_section

SECTIONS = [
    b"Host: example\r\n\r\n",
    b"Host: example\r\nContent-Length: 5\r\nX-Amz-Date: 20261203T000000Z\r\n\r\nbody!",
    b"host:no-space\r\nX-Amz-Meta-Tabs:\t\tvalue with  inner  spaces \t\r\n\r\n",
    b"X-Amz-Meta-Dup: one\r\nx-amz-meta-dup: two\r\nEmpty:\r\n\r\n",
    b"Host: x\nBare-LF: yes\n\n",  # bare LF line endings, as http.client takes them
    b"Cafe: \xe9t\xe9\r\n\r\n",  # a Latin-1 value
    b"Host: x\r\n",  # the connection ends before the empty line
]


@pytest.mark.parametrize("raw", SECTIONS)
def test_same_pairs_and_lookups_as_http_client(raw):
    ours = read_header_section(io.BytesIO(raw))
    theirs = http.client.parse_headers(io.BytesIO(raw))
    assert [(k, v.strip()) for k, v in ours._headers] == [(k, v.strip()) for k, v in theirs._headers]
    for name in {k for k, _ in theirs._headers} | {"absent", "HOST", "content-length"}:
        got, want = ours.get(name), theirs.get(name)
        assert (got if got is None else got.strip()) == (want if want is None else want.strip()), name
    assert ours.status == ""


def test_the_body_stays_unread():
    rfile = io.BytesIO(b"Content-Length: 5\r\n\r\nbody!")
    read_header_section(rfile)
    assert rfile.read() == b"body!"


def test_delete_removes_every_spelling():
    headers = read_header_section(io.BytesIO(b"Content-Length: 3\r\ncontent-length: 3\r\nHost: x\r\n\r\n"))
    del headers["CONTENT-LENGTH"]
    assert headers.get("content-length") is None
    assert headers.items() == [("Host", "x")]
    assert list(headers.headers) == ["Host: x\r\n"]


def test_typeheader_and_getheader():
    headers = read_header_section(io.BytesIO(b"Content-Type: text/plain\r\n\r\n"))
    assert headers.typeheader == "text/plain"
    assert headers.getheader("content-type") == "text/plain"
    assert headers.getheader("x-none", "d") == "d"


def test_line_over_the_limit_is_marked_not_raised():
    headers = read_header_section(io.BytesIO(b"X-Big: " + b"a" * MAX_LINE + b"\r\n\r\n"))
    assert headers.status == "Line too long"
    assert headers.items() == []


def test_a_line_at_the_limit_is_taken():
    line = b"X-Big: " + b"a" * (MAX_LINE - 9) + b"\r\n"
    assert len(line) == MAX_LINE
    assert read_header_section(io.BytesIO(line + b"\r\n")).get("x-big") == "a" * (MAX_LINE - 9)


def test_header_count_limit():
    at_limit = b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_LINES)) + b"\r\n"
    assert len(read_header_section(io.BytesIO(at_limit)).items()) == MAX_LINES
    with pytest.raises(TooManyHeaders):
        read_header_section(io.BytesIO(b"X-H: v\r\n" + at_limit))


@pytest.mark.parametrize("line", [
    b"no colon here\r\n",
    b"Authorization : AWS4\r\n",      # whitespace between name and colon (RFC 9112 section 5.1)
    b" leading-space: x\r\n",         # an obs-fold continuation
    b"\tfolded\r\n",
    b": empty name\r\n",
    b"X\x00Nul: v\r\n",
    b"Caf\xe9: v\r\n",                # a name outside the token characters
])
def test_malformed_lines_are_refused(line):
    with pytest.raises(MalformedHeader):
        read_header_section(io.BytesIO(b"Host: x\r\n" + line + b"X-After: 1\r\n\r\n"))
