"""The admin API's endpoints: the shapes the earlier BleepStore's scripts use.

Secrets appear in exactly two answers, once: POST /admin/credentials and POST
/admin/credentials/{id}/rotate. Nothing here logs a request body.
"""
from __future__ import annotations

import json
import socket
import time

from flask import Response, current_app, jsonify, request

from .. import __version__
from ..service import credentials as creds
from . import admin_endpoint

MAX_BODY = 64 * 1024
STARTED = time.time()  # this worker's start (workers fork before importing the app)
_REDACTED = "<redacted>"
_SECRET_NAMES = ("secret", "token", "password", "account_key", "connection_string")


def _services():
    return current_app.extensions["bleepstore"].services


def _forget(access_key: str) -> None:
    """This worker sees its own change at once (others within auth.cache_seconds)."""
    current_app.extensions["bleepstore"].credentials.forget(access_key)


def _body(allowed: set[str]) -> dict:
    """The JSON object sent (empty body: {}); unknown fields are refused."""
    length = request.content_length or 0
    if length > MAX_BODY:
        raise creds.BadRequest(f"the body is larger than {MAX_BODY} bytes")
    raw = request.stream.read(MAX_BODY + 1)  # bounded, chunked bodies included
    if len(raw) > MAX_BODY:
        raise creds.BadRequest(f"the body is larger than {MAX_BODY} bytes")
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise creds.BadRequest("the body is not a JSON document in UTF-8") from None
    if not isinstance(value, dict):
        raise creds.BadRequest("the body must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise creds.BadRequest(f"unknown field {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    return value


def _json(value, status: int = 200) -> Response:
    response = jsonify(value)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"  # answers may hold a secret shown once
    return response


@admin_endpoint("/status", {"GET": "Status"})
def status(action):
    svc = _services()
    try:
        svc.meta.ping()
        metadata = "ok"
    except Exception:
        metadata = "unavailable"
    settings = svc.settings
    return _json({"version": __version__, "uptime_seconds": round(time.time() - STARTED, 3),
                  "node": socket.gethostname(), "region": settings.region,
                  "metadata": {"engine": settings.metadata_engine, "status": metadata},
                  "storage": {"backend": settings.storage_backend},
                  "credential_cache_seconds": settings.credential_cache_seconds})


@admin_endpoint("/credentials", {"GET": "ListCredentials", "POST": "CreateCredential"})
def credentials(action):
    svc = _services()
    if action == "ListCredentials":
        return _json({"credentials": creds.list_credentials(svc)})
    body = _body({"description", "owner_id", "display_name"})
    created = creds.create_credential(svc, body.get("description"), body.get("owner_id"), body.get("display_name"))
    request.environ["bleepstore.admin_target"] = created["access_key_id"]
    return _json(created, 201)


@admin_endpoint("/credentials/<access_key>", {"GET": "GetCredential", "DELETE": "DeleteCredential"})
def credential(action, access_key: str):
    svc = _services()
    if action == "GetCredential":
        return _json(creds.get_credential(svc, access_key))
    args = request.args
    unknown = sorted(set(args) - {"transfer_to", "delete_buckets"})
    if unknown:
        raise creds.BadRequest(f"unknown parameter {unknown[0]!r}; allowed: transfer_to, delete_buckets")
    delete_buckets = args.get("delete_buckets", "false").lower()
    if delete_buckets not in ("true", "false"):
        raise creds.BadRequest("delete_buckets: expected true or false")
    if "transfer_to" in args and delete_buckets == "true":
        raise creds.BadRequest("transfer_to and delete_buckets=true exclude each other")
    creds.delete(svc, access_key, args.get("transfer_to"), delete_buckets == "true")
    _forget(access_key)
    return Response(status=204)


@admin_endpoint("/credentials/<access_key>/status", {"PUT": "SetCredentialStatus"})
def credential_status(action, access_key: str):
    body = _body({"status"})
    if "status" not in body:
        raise creds.BadRequest('status: required ("active" or "disabled")')
    changed = creds.set_status(_services(), access_key, body["status"])
    _forget(access_key)
    return _json(changed)


@admin_endpoint("/credentials/<access_key>/rotate", {"POST": "RotateCredential"})
def credential_rotate(action, access_key: str):
    _body(set())
    rotated = creds.rotate(_services(), access_key)
    _forget(access_key)
    return _json(rotated)


@admin_endpoint("/storage/stats", {"GET": "StorageStats"})
def storage_stats(action):
    return _json(creds.storage_stats(_services()))


@admin_endpoint("/config", {"GET": "GetConfig"})
def config(action):
    return _json(redacted_config(_services().settings))


_ANY = {m: "Unknown" for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")}


@admin_endpoint("", _ANY)
def unknown_root(action):
    raise creds.NotFound("no such admin endpoint")


@admin_endpoint("/<anything:rest>", _ANY)
def unknown(action, rest: str):
    raise creds.NotFound("no such admin endpoint")


def redacted_config(settings) -> dict:
    """The effective settings, every secret replaced (keys stay sources: names of
    variables and files, never key material)."""
    from dataclasses import asdict
    return _redact(asdict(settings))


def _redact(value, name: str = ""):
    if isinstance(value, dict):
        return {k: _redact(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact(v, name) for v in value]
    if isinstance(value, str) and value:
        lowered = name.lower()
        if lowered == "secret_encryption_key":
            return value  # a source (env:NAME / file:/path), not a key
        if any(part in lowered for part in _SECRET_NAMES):
            return _REDACTED
        if lowered.endswith("_url"):
            return _redact_url(value)
    return value


def _redact_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:{_REDACTED}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
