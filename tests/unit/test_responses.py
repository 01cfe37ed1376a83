"""responses.render: the headers a response sends are Werkzeug's, whether it takes
the short path (headers sent as they are) or Werkzeug's own get_wsgi_response."""
from __future__ import annotations

import pytest
from flask import Response

from bleepstore_app import errors
from bleepstore_app.s3.responses import S3Result, render, render_error

ENVIRON = {"REQUEST_METHOD": "GET", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "9000", "HTTP_HOST": "127.0.0.1:9000",
           "wsgi.url_scheme": "http", "SCRIPT_NAME": "", "PATH_INFO": "/b/k"}

OBJECT_HEADERS = {"ETag": '"0cc175b9c0f1b6a831c399e269772661"', "Last-Modified": "Fri, 04 Dec 2026 13:00:00 GMT",
                  "Content-Type": "binary/octet-stream", "Accept-Ranges": "bytes", "x-amz-meta-a": "b"}

CASES = {
    "object": (S3Result(200, dict(OBJECT_HEADERS), stream=[b"a"], length=1), "GET"),
    "object HEAD": (S3Result(200, dict(OBJECT_HEADERS), length=1), "HEAD"),
    "range": (S3Result(206, {**OBJECT_HEADERS, "Content-Range": "bytes 0-0/3"}, stream=[b"a"], length=1), "GET"),
    "xml": (S3Result(200, xml="<a/>"), "GET"),
    "empty": (S3Result(200), "PUT"),
    "no content": (S3Result(204), "DELETE"),
    "not modified": (S3Result(304, dict(OBJECT_HEADERS)), "GET"),
    "location": (S3Result(200, {"Location": "/b"}), "PUT"),
    "content location": (S3Result(200, {"content-location": "/b/é"}), "GET"),
    "stream without length": (S3Result(200, {}, stream=[b"ab", b"c"]), "GET"),
}


def _werkzeug(response):
    # What Werkzeug itself would send for the same response object.
    app_iter, status, headers = Response.get_wsgi_response(response, {**ENVIRON, "REQUEST_METHOD": response._method})
    return list(app_iter), status, headers


def _ours(response):
    app_iter, status, headers = response.get_wsgi_response({**ENVIRON, "REQUEST_METHOD": response._method})
    return list(app_iter), status, headers


@pytest.mark.parametrize("name", list(CASES))
def test_render_sends_what_werkzeug_sends(name):
    result, method = CASES[name]
    ours = render(result, method, "REQ1")
    ours._method = method
    theirs = render(result, method, "REQ1")
    theirs._method = method
    assert _ours(ours) == _werkzeug(theirs)


def test_short_path_keeps_content_length_and_order():
    response = render(S3Result(200, dict(OBJECT_HEADERS), length=1), "HEAD", "REQ1")
    _, status, headers = response.get_wsgi_response({**ENVIRON, "REQUEST_METHOD": "HEAD"})
    assert status == "200 OK"
    assert headers[:2] == [("x-amz-request-id", "REQ1"), ("x-amz-id-2", "bleepstore/REQ1")]
    assert ("Content-Length", "1") in headers


def test_no_content_drops_content_length_and_not_modified_keeps_last_modified():
    _, _, headers = render(S3Result(204), "DELETE", "R").get_wsgi_response({**ENVIRON, "REQUEST_METHOD": "DELETE"})
    assert "Content-Length" not in dict(headers)
    _, _, headers = render(S3Result(304, dict(OBJECT_HEADERS)), "GET", "R").get_wsgi_response(ENVIRON)
    names = dict(headers)
    assert names["Last-Modified"] == OBJECT_HEADERS["Last-Modified"] and "Content-Type" not in names


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_errors_send_what_werkzeug_sends(method):
    err = errors.NoSuchKey()
    ours, theirs = (render_error(err, method, "/b/k", "REQ1") for _ in range(2))
    ours._method = theirs._method = method
    assert _ours(ours) == _werkzeug(theirs)
