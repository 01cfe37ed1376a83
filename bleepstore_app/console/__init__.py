"""The web console: /console, server-rendered pages over the same services as S3.

A user signs in with an access key and secret; the session (a signed cookie,
HttpOnly, SameSite=Lax, Secure behind TLS) holds only the access key, looked up
again on every request, so a removed or disabled key is signed out everywhere.
Pages list buckets and objects through service/ as that user; bytes go straight
between the browser and the S3 API on presigned URLs the console signs for the
user (uploads in multipart parts with a progress bar, downloads, share links).
Every form and the presign call carry a CSRF token bound to the session. The
admin pages (users and keys, admin_pages.py) take the admin token instead.

The session key is derived from the server's active master key (every node of a
cluster shares it); without a master key the console is off, and the
answer at /console then is S3's (a bucket of that name).

Like the operator endpoints, ``/console`` yields to S3 for signed or
virtual-hosted requests (a bucket may be named "console"), and is also served
under ``/-/console``.
"""
from __future__ import annotations

from . import admin_pages  # noqa: F401  (its routes join the blueprint)
from .views import blueprint, register

__all__ = ["blueprint", "register"]
