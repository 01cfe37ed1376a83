"""The console's admin pages: users and their keys, storage totals (the admin API's services).

Signing in to them takes the admin token (``admin.token``), not an S3 key; the
session keeps a digest of it, checked against the configured token on every
request, so changing the token signs every admin session out. Failed attempts
count against the admin API's limiter for the client address.
"""
from __future__ import annotations

import hashlib
import hmac

from flask import current_app, redirect, render_template, request, session, url_for

from ..service import credentials as creds
from .session import services
from .views import blueprint

_DIGEST = "admin_token_digest"


def _digest(token: str) -> str:
    return hashlib.sha256(b"bleepstore console admin:" + token.encode()).hexdigest()


def is_admin() -> bool:
    token = services().settings.admin_token
    held = session.get(_DIGEST)
    return bool(token and held and hmac.compare_digest(held, _digest(token)))


def _limiter():
    from ..admin import FailureLimiter
    state = current_app.extensions["bleepstore"]
    settings = services().settings
    if getattr(state, "admin_limiter", None) is None:
        state.admin_limiter = FailureLimiter(settings.admin_max_failures, settings.admin_failure_window_seconds)
    return state.admin_limiter


@blueprint.route("/admin/login", methods=["GET", "POST"])
def admin_sign_in():
    token = services().settings.admin_token
    if not token:
        return render_template("console/admin_login.html", error="The admin pages are off: no admin.token is "
                                                                 "configured."), 404
    if request.method == "GET":
        return render_template("console/admin_login.html")
    address = request.environ.get("bleepstore.client_ip") or request.environ.get("REMOTE_ADDR") or "?"
    limiter = _limiter()
    if limiter.retry_after(address):
        return render_template("console/admin_login.html", error="Too many failed attempts: wait a minute."), 429
    sent = request.form.get("token", "")
    if not hmac.compare_digest(sent.encode(), token.encode()):
        limiter.failed(address)
        return render_template("console/admin_login.html", error="Wrong admin token."), 401
    session[_DIGEST] = _digest(token)
    return redirect(url_for(".admin_users"))


@blueprint.route("/admin/", methods=["GET", "POST"])
def admin_users():
    if not is_admin():
        return redirect(url_for(".admin_sign_in"))
    svc = services()
    shown_secret, message, error, status = None, None, None, 200
    if request.method == "POST":
        try:
            shown_secret, message = _act(svc)
        except creds.AdminError as exc:
            buckets = exc.extra.get("buckets")
            error = exc.message + (f" (buckets: {', '.join(buckets)})" if buckets else "")
            status = exc.status
    return render_template("console/admin.html", keys=creds.list_credentials(svc), stats=creds.storage_stats(svc),
                           shown=shown_secret, message=message, error=error), status


def _act(svc) -> tuple[dict | None, str]:
    action, key = request.form.get("action"), request.form.get("access_key", "")
    forget = current_app.extensions["bleepstore"].credentials.forget
    if action == "create":
        made = creds.create_credential(svc, request.form.get("description") or None,
                                       request.form.get("owner_id") or None, request.form.get("display_name") or None)
        return made, f"Key {made['access_key_id']} created: copy its secret now, it is not shown again."
    if action in ("enable", "disable"):
        creds.set_status(svc, key, "active" if action == "enable" else "disabled")
        forget(key)
        return None, f"Key {key} {action}d."
    if action == "rotate":
        made = creds.rotate(svc, key)
        forget(key)
        return made, f"Key {key} has a new secret: copy it now, it is not shown again."
    if action == "delete":
        creds.delete(svc, key, request.form.get("transfer_to") or None, request.form.get("delete_buckets") == "true")
        forget(key)
        return None, f"Key {key} deleted."
    raise creds.BadRequest("unknown action")
