"""The admin API: JSON under ``/admin/`` (and ``/-/admin/``), authorized by
``Authorization: Bearer <admin.token>``, never by an S3 key.

``admin`` is a valid bucket name. The rule is the operator endpoints' rule
(ops/endpoints.py): a request that carries S3 authentication (an Authorization
header that is not a bearer token, presigned-URL parameters) or is virtual-hosted
is an S3 request and goes to S3, so a signed ``aws s3 ls s3://admin`` works;
an unsigned path-style request under ``/admin/`` is the admin API's. ``/-/admin/``
can never be a bucket, for deployments that want no overlap at all.

Refusals, in order: 404 when no token is configured (the API is off), 429 when
the client address has failed too often lately (``admin.max_failures`` within
``admin.failure_window_seconds``, counted per worker), 401 on a missing or
wrong token (compared in constant time).
"""
from __future__ import annotations

import hmac
import time
from collections import deque

from flask import Blueprint, Response, current_app, jsonify, request

from ..ops.endpoints import is_s3_request
from ..service.credentials import AdminError

blueprint = Blueprint("admin", __name__)


def _is_s3(environ: dict) -> bool:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth.strip().partition(" ")[0].lower() == "bearer":
        return bool(environ.get("bleepstore.vhost_bucket"))
    return is_s3_request(environ)


class FailureLimiter:
    """Failed token checks per client address in a sliding window (one worker's view)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque] = {}

    def _recent(self, address: str, now: float) -> deque | None:
        found = self._failures.get(address)
        while found and found[0] <= now - self.window:
            found.popleft()
        return found

    def retry_after(self, address: str) -> int:
        """Seconds until ``address`` may try again (0: now)."""
        now = time.monotonic()
        found = self._recent(address, now)
        if not found or len(found) < self.limit:
            return 0
        return max(1, int(found[-self.limit] + self.window - now + 0.999))

    def failed(self, address: str) -> None:
        if len(self._failures) > 10_000:  # a backstop against address churn
            self._failures.clear()
        self._failures.setdefault(address, deque(maxlen=self.limit)).append(time.monotonic())


def error(status: int, code: str, message: str, **extra) -> Response:
    body = jsonify({"error": code, "message": message, **extra})
    body.status_code = status
    return body


def _refusal(settings) -> Response | None:
    if not settings.admin_token:
        return error(404, "NotFound", "the admin API is off: no admin.token is configured")
    state = current_app.extensions["bleepstore"]
    limiter = getattr(state, "admin_limiter", None)
    if limiter is None:
        limiter = state.admin_limiter = FailureLimiter(settings.admin_max_failures,
                                                       settings.admin_failure_window_seconds)
    # The client behind a trusted proxy (worker.py), else the peer itself.
    address = request.environ.get("bleepstore.client_ip") or request.environ.get("REMOTE_ADDR") or "?"
    wait = limiter.retry_after(address)
    if wait:
        response = error(429, "TooManyRequests", "too many failed admin token checks from this address")
        response.headers["Retry-After"] = str(wait)
        return response
    scheme, _, token = request.environ.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode("utf-8", "surrogateescape"),
                                                            settings.admin_token.encode()):
        limiter.failed(address)
        response = error(401, "Unauthorized", "a valid admin token is required: Authorization: Bearer <token>")
        response.headers["WWW-Authenticate"] = 'Bearer realm="bleepstore-admin"'
        return response
    return None


def admin_endpoint(path: str, actions: dict[str, str]):
    """Route ``/admin{path}`` and ``/-/admin{path}``: ``actions`` maps each allowed
    method to the action name (metrics label and access-log field)."""
    def register(view):
        def dispatch(**kwargs):
            environ = request.environ
            if _is_s3(environ) and not request.path.startswith("/-/"):
                from ..s3.dispatch import s3_request
                return s3_request(request.path.lstrip("/"))
            environ["bleepstore.route"] = "/admin" + path.replace("<access_key>", "{access_key_id}")
            action = actions.get(request.method) or (actions.get("GET") if request.method == "HEAD" else None)
            environ["bleepstore.admin_action"] = action or "Unknown"
            environ["bleepstore.admin_target"] = kwargs.get("access_key")
            refused = _refusal(current_app.config["BLEEPSTORE_SETTINGS"])
            if refused is not None:
                return refused
            if action is None:
                response = error(405, "MethodNotAllowed", f"{request.method} is not allowed here")
                response.headers["Allow"] = ", ".join(actions)
                return response
            try:
                return view(action, **kwargs)
            except AdminError as exc:
                return error(exc.status, exc.code, exc.message, **exc.extra)
        dispatch.__name__ = view.__name__
        methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
        for prefix in ("/admin", "/-/admin"):
            blueprint.add_url_rule(prefix + path, f"{view.__name__}{prefix}", dispatch, methods=methods)
        return view
    return register


from . import views  # noqa: E402,F401  (registers the endpoints)
