"""Console sign-in, the signed-in caller, and CSRF tokens."""
from __future__ import annotations

import hmac
import secrets

from flask import abort, current_app, request, session
from flask.sessions import SecureCookieSessionInterface

from ..service import Caller
from ..service.credentials import lookup

CSRF_FIELD = "csrf_token"


CONSOLE_PATHS = ("/console", "/-/console")  # where views.register mounts the console


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, Secure whenever the request came over TLS (directly or
    through a trusted proxy's X-Forwarded-Proto), HttpOnly and SameSite=Lax.

    Only console pages have a session: Flask opens one for every request, and for an
    S3 request that is a signing key derivation and a cookie parse it never uses
    (about a third of a HeadObject's CPU in bench/small_profile.py)."""

    def open_session(self, app, request):
        if not request.environ.get("PATH_INFO", "").startswith(CONSOLE_PATHS):
            return None  # Flask's null session: nothing read, nothing saved
        return super().open_session(app, request)

    def get_cookie_secure(self, app) -> bool:
        return request.is_secure

    def get_cookie_httponly(self, app) -> bool:
        return True

    def get_cookie_samesite(self, app) -> str:
        return "Lax"


def services():
    return current_app.extensions["bleepstore"].services


def sign_in(access_key: str, secret: str) -> Caller | None:
    """The caller for a correct, active key and secret (compared in constant time)."""
    record = lookup(services(), access_key)  # active keys only, secret opened
    if record is None:
        hmac.compare_digest(b"-" * 40, secret.encode())  # about the same work either way
        return None
    if not hmac.compare_digest(record.secret_key.encode(), secret.encode()):
        return None
    session.clear()
    session["access_key"] = access_key
    session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return Caller(record.access_key, record.owner_id, record.display_name)


def caller() -> Caller | None:
    """The signed-in user, looked up again (a disabled or deleted key is signed out)."""
    access_key = session.get("access_key")
    if not access_key:
        return None
    record = lookup(services(), access_key)
    if record is None:
        session.clear()
        return None
    return Caller(record.access_key, record.owner_id, record.display_name)


def secret_of(user: Caller) -> str:
    record = lookup(services(), user.access_key)
    if record is None:
        abort(403)
    return record.secret_key


def csrf_token() -> str:
    token = session.get(CSRF_FIELD)
    if not token:
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Unsafe methods must carry the session's token (form field or X-CSRF-Token)."""
    expected = session.get(CSRF_FIELD)
    sent = request.form.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token") or ""
    if not expected or not hmac.compare_digest(expected, sent):
        abort(400, "CSRF token missing or wrong: reload the page and try again.")
