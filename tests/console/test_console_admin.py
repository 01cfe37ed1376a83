"""The console's admin pages over HTTP: the admin token (not an S3 key) signs in, a
wrong one is refused and counted; keys are created (secret shown once), used to sign
in to the console and to S3, disabled (the user's own session ends with it),
enabled, rotated and deleted; every form needs the CSRF token."""
from __future__ import annotations

import re

import requests

from ..conftest import make_client
from .conftest import ADMIN_TOKEN
from .test_console_http import _csrf, _signed_in


def _admin(server) -> tuple[requests.Session, str]:
    session = requests.Session()
    page = session.get(server.endpoint + "/console/admin/login", timeout=10)
    ok = session.post(server.endpoint + "/console/admin/login", timeout=10, allow_redirects=False,
                      data={"token": ADMIN_TOKEN, "csrf_token": _csrf(page.text)})
    assert ok.status_code == 302
    page = session.get(server.endpoint + "/console/admin/", timeout=10)
    assert page.status_code == 200
    return session, _csrf(page.text)


def _act(server, session, token, **form) -> requests.Response:
    return session.post(server.endpoint + "/console/admin/", data=dict(form, csrf_token=token), timeout=10)


def test_admin_pages_need_the_admin_token(console_server):
    assert requests.get(console_server.endpoint + "/console/admin/", timeout=10,
                        allow_redirects=False).headers["Location"].endswith("/console/admin/login")
    # an S3 user's console session is not an admin session
    user, _ = _signed_in(console_server)
    assert user.get(console_server.endpoint + "/console/admin/", timeout=10,
                    allow_redirects=False).status_code == 302
    session = requests.Session()
    page = session.get(console_server.endpoint + "/console/admin/login", timeout=10)
    wrong = session.post(console_server.endpoint + "/console/admin/login", timeout=10,
                         data={"token": "guess", "csrf_token": _csrf(page.text)})
    assert wrong.status_code == 401
    assert session.get(console_server.endpoint + "/console/admin/", timeout=10,
                       allow_redirects=False).status_code == 302
    forged = requests.post(console_server.endpoint + "/console/admin/login", data={"token": ADMIN_TOKEN}, timeout=10)
    assert forged.status_code == 400  # no CSRF token


def test_key_lifecycle_from_the_admin_pages(console_server):
    admin, token = _admin(console_server)
    made = _act(console_server, admin, token, action="create", display_name="carol", description="from the console")
    assert made.status_code == 200
    key = re.search(r'id="shown-key">([^<]+)<', made.text).group(1)
    secret = re.search(r'id="shown-secret">([^<]+)<', made.text).group(1)
    listing = admin.get(console_server.endpoint + "/console/admin/", timeout=10).text
    assert key in listing and secret not in listing  # shown once
    s3 = make_client(console_server.endpoint, key, secret)
    s3.create_bucket(Bucket="carols-bucket")
    user, _ = _signed_in(console_server, key, secret)
    assert "carols-bucket" in user.get(console_server.endpoint + "/console/", timeout=10).text

    assert _act(console_server, admin, token, action="disable", access_key=key).status_code == 200
    assert user.get(console_server.endpoint + "/console/", timeout=10, allow_redirects=False).status_code == 302
    try:
        s3.list_buckets()
        raise AssertionError("a disabled key still works")
    except s3.exceptions.ClientError as err:
        assert err.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert _act(console_server, admin, token, action="enable", access_key=key).status_code == 200
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["carols-bucket"]

    rotated = _act(console_server, admin, token, action="rotate", access_key=key)
    new_secret = re.search(r'id="shown-secret">([^<]+)<', rotated.text).group(1)
    assert new_secret != secret
    assert [b["Name"] for b in make_client(console_server.endpoint, key, new_secret).list_buckets()["Buckets"]] == \
        ["carols-bucket"]

    refused = _act(console_server, admin, token, action="delete", access_key=key)
    assert refused.status_code == 409 and "carols-bucket" in refused.text  # owns a bucket
    deleted = _act(console_server, admin, token, action="delete", access_key=key, delete_buckets="true")
    assert deleted.status_code == 200 and key not in re.sub(r'id="message">[^<]*', "", deleted.text)


def test_admin_forms_need_the_csrf_token(console_server):
    admin, _ = _admin(console_server)
    before = admin.get(console_server.endpoint + "/console/admin/", timeout=10).text.count("<tr data-key=")
    forged = admin.post(console_server.endpoint + "/console/admin/", data={"action": "create"}, timeout=10)
    assert forged.status_code == 400
    assert admin.get(console_server.endpoint + "/console/admin/", timeout=10).text.count("<tr data-key=") == before
