"""The console's guards over plain HTTP: sign-in, CSRF, cookie flags, what it will
presign, paging, and that signed requests for a bucket named "console" still reach S3."""
from __future__ import annotations

import re
import uuid

import pytest
import requests

from ..conformance.helpers import signed_request
from ..servers import ACCESS_KEY, OTHER_ACCESS_KEY, OTHER_SECRET_KEY, SECRET_KEY


def _csrf(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def _signed_in(server, access_key=ACCESS_KEY, secret=SECRET_KEY) -> tuple[requests.Session, str]:
    session = requests.Session()
    page = session.get(server.endpoint + "/console/login", timeout=10)
    answer = session.post(server.endpoint + "/console/login", timeout=10, allow_redirects=False,
                          data={"access_key": access_key, "secret_key": secret, "csrf_token": _csrf(page.text)})
    assert answer.status_code == 302, answer.text
    home = session.get(server.endpoint + "/console/", timeout=10)
    return session, _csrf(home.text)


def test_pages_need_a_session(console_server):
    for path in ("/console/", "/console/buckets/x/", "/console/buckets/x/settings", "/-/console/"):
        answer = requests.get(console_server.endpoint + path, timeout=10, allow_redirects=False)
        assert answer.status_code == 302 and answer.headers["Location"].endswith("/login"), path


def test_sign_in_refusals_and_cookie_flags(console_server):
    session = requests.Session()
    page = session.get(console_server.endpoint + "/console/login", timeout=10)
    token = _csrf(page.text)
    no_csrf = session.post(console_server.endpoint + "/console/login", timeout=10,
                           data={"access_key": ACCESS_KEY, "secret_key": SECRET_KEY})
    assert no_csrf.status_code == 400
    wrong = session.post(console_server.endpoint + "/console/login", timeout=10,
                         data={"access_key": ACCESS_KEY, "secret_key": "nope", "csrf_token": token})
    assert wrong.status_code == 401
    unknown = session.post(console_server.endpoint + "/console/login", timeout=10,
                           data={"access_key": "nobody", "secret_key": SECRET_KEY, "csrf_token": token})
    assert unknown.status_code == 401
    assert session.get(console_server.endpoint + "/console/", timeout=10, allow_redirects=False).status_code == 302
    ok = session.post(console_server.endpoint + "/console/login", timeout=10, allow_redirects=False,
                      data={"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "csrf_token": token})
    cookie = ok.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert SECRET_KEY not in cookie
    # behind TLS (the trusted proxy says so) the cookie is Secure
    tls = requests.Session()
    page = tls.get(console_server.endpoint + "/console/login", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    ok = tls.post(console_server.endpoint + "/console/login", headers={"X-Forwarded-Proto": "https"}, timeout=10,
                  allow_redirects=False,
                  data={"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "csrf_token": _csrf(page.text)})
    assert "Secure" in ok.headers["Set-Cookie"]


def test_forms_without_the_token_change_nothing(console_server, s3):
    session, token = _signed_in(console_server)
    name = "csrf-" + uuid.uuid4().hex[:10]
    forged = session.post(console_server.endpoint + "/console/buckets", data={"name": name}, timeout=10)
    assert forged.status_code == 400
    forged = session.post(console_server.endpoint + "/console/buckets", data={"name": name, "csrf_token": "x" * 43},
                          timeout=10)
    assert forged.status_code == 400
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    made = session.post(console_server.endpoint + "/console/buckets", data={"name": name, "csrf_token": token},
                        timeout=10, allow_redirects=False)
    assert made.status_code == 302
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    gone = session.post(console_server.endpoint + f"/console/buckets/{name}/delete", data={"key": "k"}, timeout=10)
    assert gone.status_code == 400
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"x"
    no_header = session.post(console_server.endpoint + "/console/api/presign", timeout=10,
                             json={"method": "PUT", "bucket": name, "key": "k"})
    assert no_header.status_code == 400


def test_presign_signs_only_the_upload_and_download_operations(console_server, s3):
    session, token = _signed_in(console_server)
    name = "presign-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=name)

    def ask(**body):
        return session.post(console_server.endpoint + "/console/api/presign", json=body, timeout=10,
                            headers={"X-CSRF-Token": token})
    answer = ask(method="PUT", bucket=name, key="via-console", query={})
    assert answer.status_code == 200
    put = requests.put(console_server.endpoint + answer.json()["url"], data=b"signed for me", timeout=10)
    assert put.status_code == 200
    assert s3.get_object(Bucket=name, Key="via-console")["Body"].read() == b"signed for me"
    for refused in ({"method": "PUT", "bucket": name, "key": "k", "query": {"acl": ""}},
                    {"method": "DELETE", "bucket": name, "key": "k", "query": {}},
                    {"method": "PUT", "bucket": name, "key": "", "query": {}},
                    {"method": "GET", "bucket": name, "key": "k", "query": {"versionId": "x", "acl": ""}},
                    {"method": "PUT", "bucket": name, "key": "k", "query": {"policy": ""}}):
        assert ask(**refused).status_code == 400, refused
    # a URL the console signed is only as strong as the user: another user's console
    other, other_token = _signed_in(console_server, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    url = other.post(console_server.endpoint + "/console/api/presign", timeout=10,
                     headers={"X-CSRF-Token": other_token},
                     json={"method": "PUT", "bucket": name, "key": "intruder", "query": {}}).json()["url"]
    assert requests.put(console_server.endpoint + url, data=b"x", timeout=10).status_code == 403
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]] == ["via-console"]


def test_object_browser_pages_through_a_large_bucket(console_server, s3):
    session, _ = _signed_in(console_server)
    name = "pages-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=name)
    keys = sorted(f"k{i:04d}" for i in range(450))
    for key in keys:
        s3.put_object(Bucket=name, Key=key, Body=b"")
    seen, url, pages = [], f"{console_server.endpoint}/console/buckets/{name}/", 0
    while url:
        page = session.get(url, timeout=30).text
        seen += re.findall(r'tr class="object" data-key="([^"]+)"', page)
        found = re.search(r'id="next-page" href="([^"]+)"', page)
        url = console_server.endpoint + found.group(1).replace("&amp;", "&") if found else None
        pages += 1
    assert seen == keys and pages == 3
    search = session.get(f"{console_server.endpoint}/console/buckets/{name}/?search=k04", timeout=30).text
    assert re.findall(r'data-key="([^"]+)"', search) == [k for k in keys if k.startswith("k04")]


def test_another_users_bucket_is_not_browsable(console_server, s3):
    session, _ = _signed_in(console_server, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    name = "private-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="secret.txt", Body=b"s")
    page = session.get(f"{console_server.endpoint}/console/buckets/{name}/", timeout=10)
    assert "secret.txt" not in page.text and "AccessDenied" in page.text
    assert name not in session.get(console_server.endpoint + "/console/", timeout=10).text


def test_a_signed_request_for_a_bucket_named_console_is_s3(console_server, s3):
    try:
        s3.create_bucket(Bucket="console")
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.put_object(Bucket="console", Key="login", Body=b"an object, not a page")
    assert s3.get_object(Bucket="console", Key="login")["Body"].read() == b"an object, not a page"
    answer = signed_request(console_server, "GET", "/console/login")
    assert answer.status_code == 200 and answer.content == b"an object, not a page"
    # unsigned, the path is the console's; /-/console is always the console's
    assert b"Sign in" in requests.get(console_server.endpoint + "/console/login", timeout=10).content
    assert b"Sign in" in requests.get(console_server.endpoint + "/-/console/login", timeout=10).content
    s3.delete_object(Bucket="console", Key="login")
    s3.delete_bucket(Bucket="console")


@pytest.mark.parametrize("path", ["/console/static/console.js", "/console/static/console.css"])
def test_assets_are_served_from_the_package(console_server, path):
    answer = requests.get(console_server.endpoint + path, timeout=10)
    assert answer.status_code == 200 and len(answer.content) > 500
    assert "http://" not in answer.text and "https://" not in answer.text  # nothing from a CDN


def test_versions_of_a_key_and_downloading_an_old_one(console_server, s3):
    session, _ = _signed_in(console_server)
    name = "versions-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=name, Key="doc", Body=b"first")["VersionId"]
    second = s3.put_object(Bucket=name, Key="doc", Body=b"second")["VersionId"]
    s3.put_object(Bucket=name, Key="doc2", Body=b"another key")
    marker = s3.delete_object(Bucket=name, Key="doc")["VersionId"]
    page = session.get(f"{console_server.endpoint}/console/buckets/{name}/versions?key=doc", timeout=10).text
    assert re.findall(r'data-version="([^"]+)" data-marker="(true|false)"', page) == \
        [(marker, "true"), (second, "false"), (first, "false")]
    old = session.get(f"{console_server.endpoint}/console/buckets/{name}/download",
                      params={"key": "doc", "versionId": first}, timeout=10)
    assert old.status_code == 200 and old.content == b"first"
