"""Operator endpoints, and how they share the URL space with buckets.

``metrics``, ``health``, ``docs`` ... are valid bucket names. The rule: an
operator endpoint answers only requests that carry no S3 authentication
(no Authorization header, no X-Amz-Credential / AWSAccessKeyId / Signature query
parameters) and are path-style; anything signed, and anything virtual-hosted, is
an S3 request and goes to S3 — so ``aws s3 ls s3://metrics`` works. Every
endpoint is also served under ``/-/`` (``/-/metrics``, ``/-/healthz``...), which no
bucket name can ever take (bucket names start with a letter or digit), for
deployments that want a path with no possible overlap.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from .health import check_components
from .metrics import exposition

blueprint = Blueprint("ops", __name__)

_S3_QUERY_AUTH = ("X-Amz-Credential", "X-Amz-Signature", "AWSAccessKeyId", "Signature")


def is_s3_request(environ: dict) -> bool:
    """Signed or virtual-hosted: then the path names a bucket, not an endpoint."""
    if environ.get("bleepstore.vhost_bucket") or environ.get("HTTP_AUTHORIZATION"):
        return True
    query = environ.get("QUERY_STRING", "")
    return any(name in query for name in _S3_QUERY_AUTH)


def operator_endpoint(path: str, methods=("GET", "HEAD")):
    """Route ``path`` and ``/-{path}`` to the view, unless the request is an S3 request."""
    def register(view):
        def dispatch(**kwargs):
            environ = request.environ
            if is_s3_request(environ) and not request.path.startswith("/-/"):
                from ..s3.dispatch import s3_request
                return s3_request(request.path.lstrip("/"))
            environ["bleepstore.route"] = path
            return view(**kwargs)
        dispatch.__name__ = view.__name__
        blueprint.add_url_rule(path, view.__name__, dispatch, methods=list(methods))
        blueprint.add_url_rule("/-" + path, view.__name__ + "_prefixed", dispatch, methods=list(methods))
        return view
    return register


def _services():
    return current_app.extensions["bleepstore"].services


@operator_endpoint("/healthz")
def healthz():
    """Liveness: the process answers."""
    return Response(status=200)


@operator_endpoint("/readyz")
def readyz():
    """Readiness: recovery done (true in any worker), metadata and storage answer.
    Ready is 200 with an empty body (the earlier BleepStore's probes expect that);
    not ready is 503 naming what is down."""
    components = check_components(_services())
    down = [name for name, c in components.items() if c["status"] != "ok"]
    if not down:
        return Response(status=200)
    return Response(f"not ready: {', '.join(down)} unavailable\n", status=503, mimetype="text/plain")


@operator_endpoint("/health")
def health():
    """Each component's status and latency, as JSON: ``checks`` is the earlier
    BleepStore's shape (dashboards and probes read it), ``components`` the same
    entries under this server's first name for them."""
    components = check_components(_services())
    ok = all(c["status"] == "ok" for c in components.values())
    body = jsonify({"status": "ok" if ok else "unavailable", "checks": components, "components": components})
    body.status_code = 200 if ok else 503
    return body


@operator_endpoint("/metrics")
def metrics():
    """Prometheus exposition of every worker's metrics (summed by the exporter)."""
    data, content_type = exposition(current_app.extensions["bleepstore_metrics"], request.headers.get("Accept"))
    return Response(data, status=200, headers={"Content-Type": content_type})


@operator_endpoint("/openapi.json")
def openapi_json():
    """The OpenAPI document, generated from the routing table."""
    from .openapi import build_document
    return jsonify(build_document(request.host_url.rstrip("/")))


_SWAGGER_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
                   "favicon-32x32.png", "favicon-16x16.png")
_DOCS_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>BleepStore API</title>
<link rel="stylesheet" href="{prefix}/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="{prefix}/docs/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="{prefix}/docs/swagger-ui-bundle.js"></script>
<script src="{prefix}/docs/swagger-ui-standalone-preset.js"></script>
<script>window.ui = SwaggerUIBundle({{url: "{prefix}/openapi.json", dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout"}});</script>
</body></html>
"""


@operator_endpoint("/docs")
def docs():
    """Swagger UI, its assets served from the installed flask-swagger-ui package."""
    prefix = "/-" if request.path.startswith("/-/") else ""
    return Response(_DOCS_PAGE.format(prefix=prefix), mimetype="text/html")


@operator_endpoint('/docs/<any("' + '","'.join(_SWAGGER_ASSETS) + '"):asset>')
def docs_asset(asset: str):
    import os

    import flask_swagger_ui
    from flask import send_from_directory
    return send_from_directory(os.path.join(os.path.dirname(flask_swagger_ui.__file__), "dist"), asset,
                               max_age=3600)
