"""The floor under a Python S3 server: a bare Flask app on BleepStore's gunicorn settings.

Issue #20 measures BleepStore against this app in the same run: gevent workers
(2 by default), the same bind and keep-alive, no authentication, no database, no
disk. It answers the requests the harness's ``small`` scenario sends as an S3
server would in shape (PUT: read the body, answer its MD5 ETag; GET: a body of
the size asked for at set-up; HEAD: the headers; DELETE: 204) and anything else
the harness's set-up sends (CreateBucket, the PUTs that fill a bucket) with 200.

    .venv/bin/gunicorn -k gevent -w 2 -b 127.0.0.1:9020 bench.bare_app:app &
    .venv/bin/python -m bench --endpoint http://127.0.0.1:9020 --server-pid $! \\
        --scenarios small --small-sizes 1K --concurrency 16 --duration 5

Objects are kept per worker in memory (a GET of a key another worker stored is
still answered, with zeros of the last size seen): the point is the cost of the
request, not storage.
"""
from __future__ import annotations

import hashlib

from flask import Flask, Response, request

app = Flask(__name__)
_sizes: dict[str, int] = {}
_last_size = [1024]


@app.route("/", defaults={"path": ""}, methods=["GET", "PUT", "HEAD", "DELETE", "POST"])
@app.route("/<path:path>", methods=["GET", "PUT", "HEAD", "DELETE", "POST"])
def anything(path: str) -> Response:
    method = request.method
    if method == "PUT":
        body = request.get_data()
        if "/" in path:
            _sizes[path] = _last_size[0] = len(body)
        return Response(status=200, headers={"ETag": f'"{hashlib.md5(body).hexdigest()}"'})
    if method == "DELETE":
        _sizes.pop(path, None)
        return Response(status=204)
    if method in ("GET", "HEAD") and "/" in path:
        size = _sizes.get(path, _last_size[0])
        return Response(b"\0" * size if method == "GET" else b"", status=200,
                        headers={"Content-Length": str(size), "ETag": '"bare"'})
    return Response(b"<ok/>", status=200, content_type="application/xml")
