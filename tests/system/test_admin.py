"""The admin API and `bleepstore admin`, over HTTP against real servers (and
the CLI's --direct mode on their database), on each metadata engine.

A key made at run time is used by boto3, disabled (refused), enabled, rotated
and deleted without a restart; the token is required (401), the API is off
without one (404), failures are rate-limited per client address (429); secrets
are never in an answer other than the one that makes them, nor in the log, nor
in clear in the database.
"""
from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from botocore.exceptions import ClientError

from ..conftest import ENGINES, make_client
from ..servers import ACCESS_KEY, OTHER_ACCESS_KEY, OTHER_SECRET_KEY, SECRET_KEY, Server, write_config

TOKEN = "admin-" + uuid.uuid4().hex  # long enough (>= 16 characters)
CACHE_SECONDS = 1
BLEEPSTORE = str(Path(sys.executable).parent / "bleepstore")


class Admin:
    def __init__(self, endpoint: str, token: str | None = TOKEN, prefix: str = "/admin") -> None:
        self.base, self.token = endpoint + prefix, token

    def __call__(self, method: str, path: str, body=None, token: str | None = "default", **kw):
        token = self.token if token == "default" else token
        headers = kw.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        return requests.request(method, self.base + path, data=body, headers=headers, timeout=30, **kw)


@pytest.fixture(scope="module", params=ENGINES)
def admin_server(request, tmp_path_factory, pg_databases):
    workdir = tmp_path_factory.mktemp(f"admin-{request.param}")
    url = pg_databases.create() if request.param == "postgresql" else None
    config = write_config(workdir, url, extra=f"admin:\n  token: {TOKEN}\n")
    env = dict(os.environ, BLEEPSTORE_CONFIG=str(config), BLEEPSTORE_AUTH_CACHE_SECONDS=str(CACHE_SECONDS))
    srv = Server(workdir, env).start()
    srv.engine = request.param
    yield srv
    srv.stop()


@pytest.fixture
def admin(admin_server) -> Admin:
    return Admin(admin_server.endpoint)


def past_cache() -> None:
    """Every worker's cached lookup has expired (a stated bound, not a timing test)."""
    time.sleep(CACHE_SECONDS + 0.3)


def error_code(call) -> tuple[str, int]:
    with pytest.raises(ClientError) as exc:
        call()
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def refused_everywhere(client, attempts: int = 6) -> None:
    """Several requests (spread over the workers): each refused as AWS refuses an
    inactive or unknown key."""
    for _ in range(attempts):
        assert error_code(client.list_buckets) == ("InvalidAccessKeyId", 403)


def credential_rows(env: dict) -> list[dict]:
    from bleepstore_app.config import load_settings
    url = load_settings(env["BLEEPSTORE_CONFIG"], environ=env).database_url
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM credentials"))]
    finally:
        engine.dispose()


SECRETS_SEEN: list[str] = [SECRET_KEY, OTHER_SECRET_KEY, TOKEN]


def test_key_lifecycle_without_a_restart(admin_server, admin):
    made = admin("POST", "/credentials", {"description": "ci robot", "display_name": "robot"})
    assert made.status_code == 201, made.text
    key = made.json()
    secret = key["secret_access_key"]
    SECRETS_SEEN.append(secret)
    assert key["status"] == "active" and key["description"] == "ci robot" and key["display_name"] == "robot"
    assert len(key["access_key_id"]) == 20 and len(secret) == 40
    assert key["created_at"].endswith("Z") and key["source"] == "admin"
    ak = key["access_key_id"]

    robot = make_client(admin_server.endpoint, ak, secret)
    bucket = "robot-" + uuid.uuid4().hex[:10]
    robot.create_bucket(Bucket=bucket)
    robot.put_object(Bucket=bucket, Key="k", Body=b"made by the robot")
    assert robot.get_object(Bucket=bucket, Key="k")["Body"].read() == b"made by the robot"
    # a wrong secret for the new key is refused as a bad signature
    assert error_code(make_client(admin_server.endpoint, ak, "x" * 40).list_buckets) == \
        ("SignatureDoesNotMatch", 403)

    listed = admin("GET", "/credentials").json()["credentials"]
    assert {c["access_key_id"] for c in listed} >= {ACCESS_KEY, OTHER_ACCESS_KEY, ak}
    assert all("secret_access_key" not in c and "secret_key" not in c for c in listed)
    assert secret not in admin("GET", "/credentials").text
    shown = admin("GET", f"/credentials/{ak}")
    assert shown.status_code == 200 and shown.json()["status"] == "active" and secret not in shown.text
    assert "secret_access_key" not in shown.json()

    disabled = admin("PUT", f"/credentials/{ak}/status", {"status": "disabled"})
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    past_cache()
    refused_everywhere(robot)
    assert admin("GET", f"/credentials/{ak}").json()["status"] == "disabled"
    # the main user still works; the robot's bucket is still there (someone else's: 403, not 404)
    assert error_code(lambda: make_client(admin_server.endpoint).head_bucket(Bucket=bucket))[1] == 403

    assert admin("PUT", f"/credentials/{ak}/status", {"status": "active"}).json()["status"] == "active"
    past_cache()
    for _ in range(4):
        assert robot.get_object(Bucket=bucket, Key="k")["Body"].read() == b"made by the robot"

    rotated = admin("POST", f"/credentials/{ak}/rotate")
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret_access_key"]
    SECRETS_SEEN.append(new_secret)
    assert new_secret != secret and len(new_secret) == 40
    past_cache()
    for _ in range(4):
        assert error_code(robot.list_buckets) == ("SignatureDoesNotMatch", 403)
    robot = make_client(admin_server.endpoint, ak, new_secret)
    assert robot.get_object(Bucket=bucket, Key="k")["Body"].read() == b"made by the robot"

    # the owner's last key, and the owner has a bucket: refused unless asked
    refused = admin("DELETE", f"/credentials/{ak}")
    assert refused.status_code == 409 and refused.json()["buckets"] == [bucket], refused.text
    not_empty = admin("DELETE", f"/credentials/{ak}", params={"delete_buckets": "true"})
    assert not_empty.status_code == 409 and not_empty.json()["buckets"] == [bucket], not_empty.text
    assert admin("GET", f"/credentials/{ak}").status_code == 200  # nothing deleted
    assert robot.get_object(Bucket=bucket, Key="k")["Body"].read() == b"made by the robot"
    assert admin("DELETE", f"/credentials/{ak}", params={"delete_buckets": "maybe"}).status_code == 400
    robot.delete_object(Bucket=bucket, Key="k")
    gone = admin("DELETE", f"/credentials/{ak}", params={"delete_buckets": "true"})
    assert gone.status_code == 204 and gone.content == b""
    assert error_code(lambda: make_client(admin_server.endpoint).head_bucket(Bucket=bucket))[1] == 404
    past_cache()
    refused_everywhere(robot)
    assert admin("GET", f"/credentials/{ak}").status_code == 404
    assert admin("DELETE", f"/credentials/{ak}").status_code == 404
    assert admin("PUT", f"/credentials/{ak}/status", {"status": "active"}).status_code == 404
    assert admin("POST", f"/credentials/{ak}/rotate").status_code == 404


def test_delete_transfers_buckets(admin_server, admin):
    key = admin("POST", "/credentials", {}).json()
    SECRETS_SEEN.append(key["secret_access_key"])
    user = make_client(admin_server.endpoint, key["access_key_id"], key["secret_access_key"])
    bucket = "moving-" + uuid.uuid4().hex[:10]
    user.create_bucket(Bucket=bucket)
    user.put_object(Bucket=bucket, Key="stays", Body=b"payload")
    main = make_client(admin_server.endpoint)
    main_owner = main.list_buckets()["Owner"]["ID"]
    assert bucket not in [b["Name"] for b in main.list_buckets()["Buckets"]]

    unknown = admin("DELETE", f"/credentials/{key['access_key_id']}", params={"transfer_to": "nobody"})
    assert unknown.status_code == 400, unknown.text
    assert admin("GET", f"/credentials/{key['access_key_id']}").status_code == 200
    both = admin("DELETE", f"/credentials/{key['access_key_id']}",
                 params={"transfer_to": main_owner, "delete_buckets": "true"})
    assert both.status_code == 400

    moved = admin("DELETE", f"/credentials/{key['access_key_id']}", params={"transfer_to": main_owner})
    assert moved.status_code == 204, moved.text
    assert bucket in [b["Name"] for b in main.list_buckets()["Buckets"]]
    assert main.get_object(Bucket=bucket, Key="stays")["Body"].read() == b"payload"
    main.delete_object(Bucket=bucket, Key="stays")
    main.delete_bucket(Bucket=bucket)


def test_a_second_key_for_an_owner_and_configured_keys(admin_server, admin):
    main_owner = make_client(admin_server.endpoint).list_buckets()["Owner"]["ID"]
    second = admin("POST", "/credentials", {"owner_id": main_owner}).json()
    SECRETS_SEEN.append(second["secret_access_key"])
    assert second["owner_id"] == main_owner and second["display_name"] == "main-user"
    as_main = make_client(admin_server.endpoint, second["access_key_id"], second["secret_access_key"])
    assert as_main.list_buckets()["Owner"]["ID"] == main_owner
    # not the last key of its owner: deleting it never touches the owner's buckets
    assert admin("DELETE", f"/credentials/{second['access_key_id']}").status_code == 204

    # keys from the configuration: deleted or rotated only there, disabled here
    for method, path in (("DELETE", ""), ("POST", "/rotate")):
        refused = admin(method, f"/credentials/{OTHER_ACCESS_KEY}{path}")
        assert refused.status_code == 409 and "configuration" in refused.json()["message"], refused.text
    other = make_client(admin_server.endpoint, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    assert admin("PUT", f"/credentials/{OTHER_ACCESS_KEY}/status", {"status": "disabled"}).status_code == 200
    try:
        past_cache()
        refused_everywhere(other)
    finally:
        assert admin("PUT", f"/credentials/{OTHER_ACCESS_KEY}/status", {"status": "active"}).status_code == 200
    past_cache()
    other.list_buckets()


def test_hostile_input_stores_nothing(admin_server, admin):
    before = admin("GET", "/credentials").json()["credentials"]
    cases = [b"\xff\xfe{\"description\": \"x\"}", b"[1, 2]", b"{\"description\": ", b"{\"secret\": \"mine\"}",
             json.dumps({"description": "x" * 257}).encode(), json.dumps({"description": "bell\x07"}).encode(),
             json.dumps({"owner_id": "../../etc"}).encode(), json.dumps({"display_name": 5}).encode(),
             b"{\"description\": \"" + b"y" * 70_000 + b"\"}"]
    for body in cases:
        answer = admin("POST", "/credentials", body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, (body[:40], answer.status_code, answer.text)
        assert answer.json()["error"] == "BadRequest"
    # the oversize body once more, chunked (no Content-Length to refuse it by)
    chunked = admin("POST", "/credentials", (b"{" + b" " * 8192 for _ in range(10)))
    assert chunked.status_code == 400 and "larger" in chunked.json()["message"], chunked.text
    assert admin("GET", "/credentials").json()["credentials"] == before
    for status in ("enabled", None, 1):
        bad = admin("PUT", f"/credentials/{OTHER_ACCESS_KEY}/status", {"status": status})
        assert bad.status_code == 400, bad.text
    assert admin("PUT", f"/credentials/{OTHER_ACCESS_KEY}/status", b"\xff").status_code == 400
    assert admin("GET", f"/credentials/{OTHER_ACCESS_KEY}").json()["status"] == "active"
    assert admin("GET", "/credentials").json()["credentials"] == before
    assert admin("PATCH", "/credentials").status_code == 405
    head = admin("HEAD", "/credentials")
    assert head.status_code == 200 and head.content == b""
    assert admin("GET", "/nothing-here").status_code == 404


def test_token_required(admin_server, admin):
    for token in (None, "", "wrong-" + TOKEN, TOKEN[:-1], TOKEN + "x"):
        answer = admin("GET", "/credentials", token=token)
        assert answer.status_code == 401, (token, answer.text)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert "credentials" not in answer.json()
    # an S3 key is not an admin credential: a signed request is an S3 request
    s3 = make_client(admin_server.endpoint)
    assert error_code(lambda: s3.head_bucket(Bucket="admin"))[1] == 404  # the bucket "admin", not the API
    s3.create_bucket(Bucket="admin")
    try:
        s3.put_object(Bucket="admin", Key="status", Body=b"an object")
        assert s3.get_object(Bucket="admin", Key="status")["Body"].read() == b"an object"
        # ... while the admin API answers under the same path, and under /-/admin
        assert admin("GET", "/status").json()["metadata"]["engine"] == admin_server.engine
        prefixed = Admin(admin_server.endpoint, prefix="/-/admin")("GET", "/status")
        assert prefixed.status_code == 200 and prefixed.json()["storage"]["backend"] == "local"
        s3.delete_object(Bucket="admin", Key="status")
    finally:
        s3.delete_bucket(Bucket="admin")


def test_status_config_and_stats(admin_server, admin):
    status = admin("GET", "/status").json()
    assert status["version"] and status["uptime_seconds"] >= 0
    assert status["metadata"] == {"engine": admin_server.engine, "status": "ok"}
    config = admin("GET", "/config")
    assert config.status_code == 200
    for secret in (SECRET_KEY, OTHER_SECRET_KEY, TOKEN):
        assert secret not in config.text
    body = config.json()
    assert body["admin_token"] == "<redacted>"
    assert {c["access_key"]: c["secret_key"] for c in body["credentials"]} == \
        {ACCESS_KEY: "<redacted>", OTHER_ACCESS_KEY: "<redacted>"}
    assert body["metadata_engine"] == admin_server.engine and body["credential_cache_seconds"] == CACHE_SECONDS

    s3 = make_client(admin_server.endpoint)
    plain, versioned = "stats-" + uuid.uuid4().hex[:8], "statsv-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=plain)
    s3.create_bucket(Bucket=versioned)
    s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Enabled"})
    for n, size in enumerate((10, 100, 100_000)):
        s3.put_object(Bucket=plain, Key=f"o{n}", Body=b"a" * size)
    s3.put_object(Bucket=versioned, Key="doc", Body=b"b" * 300)
    s3.put_object(Bucket=versioned, Key="doc", Body=b"c" * 7)       # the 300 bytes become noncurrent
    s3.put_object(Bucket=versioned, Key="gone", Body=b"d" * 50)
    s3.delete_object(Bucket=versioned, Key="gone")                  # a delete marker over 50 bytes
    try:
        stats = admin("GET", "/storage/stats").json()
        per = {b["name"]: b for b in stats["per_bucket"]}
        assert per[plain]["objects"] == 3 and per[plain]["bytes"] == 100_110
        assert per[plain]["noncurrent_versions"] == 0 and per[plain]["noncurrent_bytes"] == 0
        assert per[versioned]["objects"] == 1 and per[versioned]["bytes"] == 7
        assert per[versioned]["noncurrent_versions"] == 2 and per[versioned]["noncurrent_bytes"] == 350
        assert per[plain]["owner_id"] == s3.list_buckets()["Owner"]["ID"]
        assert stats["buckets"] == len(per) == len(s3.list_buckets()["Buckets"]) + sum(
            1 for b in per.values() if b["owner_id"] != per[plain]["owner_id"])
        for total in ("objects", "bytes", "noncurrent_versions", "noncurrent_bytes"):
            assert stats[total] == sum(b[total] for b in per.values()), total
    finally:
        for n in range(3):
            s3.delete_object(Bucket=plain, Key=f"o{n}")
        s3.delete_bucket(Bucket=plain)


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BLEEPSTORE, "admin", *args], env=env, capture_output=True, text=True, timeout=60)


def test_cli_over_http_and_direct(admin_server):
    http_env = dict(os.environ, BLEEPSTORE_ADMIN_URL=admin_server.endpoint, BLEEPSTORE_ADMIN_TOKEN=TOKEN)
    http_env.pop("BLEEPSTORE_CONFIG", None)
    made = cli(http_env, "credentials", "create", "--description", "from the cli")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    SECRETS_SEEN.append(key["secret_access_key"])
    user = make_client(admin_server.endpoint, key["access_key_id"], key["secret_access_key"])
    user.list_buckets()
    listed = cli(http_env, "credentials", "list")
    assert listed.returncode == 0 and key["access_key_id"] in listed.stdout
    assert key["secret_access_key"] not in listed.stdout
    disabled = cli(http_env, "credentials", "disable", key["access_key_id"])
    assert disabled.returncode == 0 and json.loads(disabled.stdout)["status"] == "disabled"
    past_cache()
    refused_everywhere(user, 3)
    assert json.loads(cli(http_env, "credentials", "enable", key["access_key_id"]).stdout)["status"] == "active"
    assert json.loads(cli(http_env, "status").stdout)["metadata"]["engine"] == admin_server.engine
    assert "per_bucket" in json.loads(cli(http_env, "storage-stats").stdout)
    wrong = cli(dict(http_env, BLEEPSTORE_ADMIN_TOKEN="not-the-token-at-all"), "credentials", "list")
    assert wrong.returncode == 1 and "401" in wrong.stderr and wrong.stdout == ""

    # --direct: the same database, no HTTP, no token; the running server sees the change
    direct_env = dict(admin_server.env)
    direct_env.pop("BLEEPSTORE_ADMIN_TOKEN", None)
    direct = cli(direct_env, "--direct", "credentials", "create", "--display-name", "bootstrap")
    assert direct.returncode == 0, direct.stderr
    boot = json.loads(direct.stdout)
    SECRETS_SEEN.append(boot["secret_access_key"])
    assert make_client(admin_server.endpoint, boot["access_key_id"], boot["secret_access_key"]) \
        .list_buckets()["Owner"]["DisplayName"] == "bootstrap"
    shown = cli(direct_env, "--direct", "credentials", "show", key["access_key_id"])
    assert json.loads(shown.stdout)["description"] == "from the cli"
    assert json.loads(cli(direct_env, "--direct", "status").stdout)["metadata"]["engine"] == admin_server.engine
    assert "per_bucket" in json.loads(cli(direct_env, "--direct", "storage-stats").stdout)
    for env, access_key in ((direct_env, boot["access_key_id"]), (http_env, key["access_key_id"])):
        args = ("--direct",) if env is direct_env else ()
        deleted = cli(env, *args, "credentials", "delete", access_key)
        assert deleted.returncode == 0, deleted.stderr
        again = cli(env, *args, "credentials", "show", access_key)
        assert again.returncode == 1 and "404" in again.stderr
    past_cache()
    refused_everywhere(user, 3)


def test_secrets_never_in_clear(admin_server, admin):
    """Every secret made or used here and by the tests that ran before (pytest-xdist
    may run this one earlier than file order: it makes and rotates a key of its own)."""
    made = admin("POST", "/credentials", {"description": "secrets check"})
    assert made.status_code == 201, made.text
    SECRETS_SEEN.append(made.json()["secret_access_key"])
    rotated = admin("POST", f"/credentials/{made.json()['access_key_id']}/rotate")
    assert rotated.status_code == 200, rotated.text
    SECRETS_SEEN.append(rotated.json()["secret_access_key"])
    assert admin("GET", "/status", token="not-the-token").status_code == 401
    rows = credential_rows(admin_server.env)
    assert rows, "no credentials?"
    for row in rows:
        assert row["secret_key"] is None, row["access_key"]
        assert row["secret_ciphertext"].startswith("v1:sse:m1:"), row["access_key"]
        text = repr(row)
        for secret in SECRETS_SEEN:
            assert secret not in text, row["access_key"]
    log = admin_server.log_path.read_text(errors="replace")
    assert "admin_action=CreateCredential" in log and "admin_action=RotateCredential" in log
    for secret in SECRETS_SEEN:
        assert secret not in log
    for _ in range(50):  # a request is counted just after its last byte
        metrics = requests.get(admin_server.endpoint + "/metrics", timeout=10).text
        counted = [line for line in metrics.splitlines()
                   if line.startswith("bleepstore_admin_requests_total{") and 'action="CreateCredential"' in line
                   and 'status="201"' in line]
        if counted and float(counted[0].rsplit(" ", 1)[1]) >= 1 and 'status="401"' in metrics:
            break
        time.sleep(0.1)
    assert counted and float(counted[0].rsplit(" ", 1)[1]) >= 1, counted
    assert any('status="401"' in line for line in metrics.splitlines()
               if line.startswith("bleepstore_admin_requests_total{"))


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory):
    """One worker (the failure count is per worker), three failures a minute."""
    workdir = tmp_path_factory.mktemp("admin-limited")
    config = write_config(workdir, None, extra=f"admin:\n  token: {TOKEN}\n  max_failures: 3\n")
    srv = Server(workdir, dict(os.environ, BLEEPSTORE_CONFIG=str(config), BLEEPSTORE_SERVER_WORKERS="1")).start()
    yield srv
    srv.stop()


def raw_get(srv: Server, path: str, token: str, source: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, dict(resp.getheaders())
    finally:
        conn.close()


def test_failures_are_rate_limited_per_address(limited_server):
    for _ in range(3):
        assert raw_get(limited_server, "/admin/status", "guess", "127.0.0.1")[0] == 401
    for token in ("guess", TOKEN):  # the right token too: the guesser cannot tell
        status, headers = raw_get(limited_server, "/admin/status", token, "127.0.0.1")
        assert status == 429 and 1 <= int(headers["Retry-After"]) <= 60
    # another client address is not locked out
    assert raw_get(limited_server, "/admin/status", TOKEN, "127.0.0.2")[0] == 200
    assert raw_get(limited_server, "/admin/status", "guess", "127.0.0.2")[0] == 401


def test_off_without_a_token(tmp_path):
    config = write_config(tmp_path, None)
    srv = Server(tmp_path, dict(os.environ, BLEEPSTORE_CONFIG=str(config), BLEEPSTORE_SERVER_WORKERS="1")).start()
    try:
        for token in (None, TOKEN, ""):
            for path in ("/admin/status", "/admin/credentials", "/-/admin/config"):
                answer = Admin(srv.endpoint, token)("GET", path)
                assert answer.status_code == 404, (path, answer.text)
                assert "credentials" not in answer.json() and SECRET_KEY not in answer.text
        made = Admin(srv.endpoint)("POST", "/credentials", {})
        assert made.status_code == 404
        assert sorted(r["access_key"] for r in credential_rows(srv.env)) == sorted([ACCESS_KEY, OTHER_ACCESS_KEY])
        assert make_client(srv.endpoint).list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        srv.stop()
