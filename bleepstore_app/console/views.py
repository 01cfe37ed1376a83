"""The console's pages: sign-in, buckets, the object browser, bucket settings, and the presign call."""
from __future__ import annotations

import json

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for

from .. import errors
from ..auth.presign import object_path, presign_v4
from ..ops.endpoints import is_s3_request
from ..service import buckets as bucket_ops
from ..service import lifecycle, listing, objects, policy, versions
from . import session as auth

blueprint = Blueprint("console", __name__, template_folder="templates", static_folder="static",
                      static_url_path="/static")
PAGE_SIZE = 200
SHARE_EXPIRIES = {"3600": "1 hour", "86400": "1 day", "604800": "7 days"}
# What the browser may have signed: the object operations an upload, a download
# and a share link need (anything else the pages do server-side).
_PRESIGNABLE = {("PUT", ()), ("PUT", ("partNumber", "uploadId")), ("POST", ("uploads",)), ("POST", ("uploadId",)),
                ("DELETE", ("uploadId",)), ("GET", ())}


def register(app) -> None:
    """Mount the console at /console and /-/console, if a session key can be had."""
    if not app.secret_key:
        return
    from .session import CONSOLE_PATHS, ConsoleSessionInterface
    app.session_interface = ConsoleSessionInterface()
    plain, prefixed = CONSOLE_PATHS
    app.register_blueprint(blueprint, url_prefix=plain)
    app.register_blueprint(blueprint, url_prefix=prefixed, name="console_prefixed")


@blueprint.before_request
def _route():
    environ = request.environ
    if is_s3_request(environ) and not request.path.startswith("/-/"):
        from ..s3.dispatch import s3_request  # a signed request for a bucket named "console"
        return s3_request(request.path.lstrip("/"))
    environ["bleepstore.route"] = "/console"
    if request.method not in ("GET", "HEAD"):
        auth.check_csrf()
    # the admin pages check the admin token themselves (admin_pages.py)
    public = request.endpoint and request.endpoint.rsplit(".", 1)[-1] in ("sign_in", "static", "admin_sign_in",
                                                                          "admin_users")
    if not public and auth.caller() is None:
        return redirect(url_for(".sign_in"))
    return None


@blueprint.app_template_global()
def csrf_token() -> str:
    return auth.csrf_token()


@blueprint.app_template_filter("when")
def _when(us: int) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(us / 1e6, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@blueprint.app_template_filter("size")
def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _svc():
    return auth.services()


def _user():
    return auth.caller()


def _failed(err: errors.S3Error, template: str, status: int | None = None, **context):
    return render_template(template, error=f"{err.code}: {err.message}", **context), status or err.status


# -- sign-in ----------------------------------------------------------------------

@blueprint.route("/login", methods=["GET", "POST"])
def sign_in():
    if request.method == "POST":
        if auth.sign_in(request.form.get("access_key", ""), request.form.get("secret_key", "")) is None:
            return render_template("console/login.html", error="Wrong access key or secret."), 401
        return redirect(url_for(".bucket_list"))
    return render_template("console/login.html")


@blueprint.route("/logout", methods=["POST"])
def sign_out():
    from flask import session
    session.clear()
    return redirect(url_for(".sign_in"))


# -- buckets ----------------------------------------------------------------------

@blueprint.route("/")
def bucket_list():
    svc, user = _svc(), _user()
    found, _ = bucket_ops.list_buckets(svc, user)
    rows = [(b, *svc.meta.bucket_usage(b.name)) for b in found]
    return render_template("console/buckets.html", user=user, rows=rows, error=request.args.get("error"))


@blueprint.route("/buckets", methods=["POST"])
def create_bucket():
    name = request.form.get("name", "").strip()
    try:
        bucket_ops.create_bucket(_svc(), _user(), name, None)
    except errors.S3Error as err:
        return redirect(url_for(".bucket_list", error=f"{err.code}: {err.message}"))
    return redirect(url_for(".browse", bucket=name))


@blueprint.route("/buckets/<bucket>/")
def browse(bucket: str):
    svc, user = _svc(), _user()
    prefix = request.args.get("prefix", "")
    search = request.args.get("search")
    after = request.args.get("after") or None
    if search is not None:
        prefix = search
    delimiter = "" if search is not None else "/"
    try:
        page = listing.list_objects(svc, user, bucket, prefix, delimiter, after, PAGE_SIZE)
        status = versions.get_bucket_versioning(svc, user, bucket)
    except errors.S3Error as err:
        return redirect(url_for(".bucket_list", error=f"{err.code}: {err.message}"))
    crumbs, built = [], ""
    for part in [p for p in prefix.split("/") if p] if delimiter else []:
        built += part + "/"
        crumbs.append((part, built))
    return render_template("console/objects.html", user=user, bucket=bucket, prefix=prefix, page=page,
                           search=search, crumbs=crumbs, versioning=status, expiries=SHARE_EXPIRIES,
                           error=request.args.get("error"))


@blueprint.route("/buckets/<bucket>/delete", methods=["POST"])
def delete_object(bucket: str):
    key = request.form.get("key", "")
    prefix = request.form.get("prefix", "")
    try:
        objects.delete_object(_svc(), _user(), bucket, key)
    except errors.S3Error as err:
        return redirect(url_for(".browse", bucket=bucket, prefix=prefix, error=f"{err.code}: {err.message}"))
    return redirect(url_for(".browse", bucket=bucket, prefix=prefix))


@blueprint.route("/buckets/<bucket>/download")
def download(bucket: str):
    key = request.args.get("key", "")
    name = key.rsplit("/", 1)[-1] or "download"
    query = {"response-content-disposition": f'attachment; filename="{name.replace(chr(34), "")}"'}
    if request.args.get("versionId"):
        query["versionId"] = request.args["versionId"]
    return redirect(_presigned("GET", bucket, key, query, 300))


@blueprint.route("/buckets/<bucket>/versions")
def object_versions(bucket: str):
    """Every version of one key (and its delete markers), newest first."""
    from ..metadata.records import ListedVersion
    key = request.args.get("key", "")
    found, marker, version_marker = [], "", ""
    try:
        while True:  # a key with more than a page of versions: follow the markers
            page = versions.list_object_versions(_svc(), _user(), bucket, key, "", marker, version_marker, 1000)
            found += [ListedVersion._make(row) for row in page.versions if row[0] == key]
            if not page.is_truncated or (page.versions and page.versions[-1][0] != key):
                break
            marker, version_marker = page.next_key_marker, page.next_version_id_marker
    except errors.S3Error as err:
        return redirect(url_for(".browse", bucket=bucket, error=f"{err.code}: {err.message}"))
    return render_template("console/versions.html", user=_user(), bucket=bucket, key=key, versions=found)


@blueprint.route("/buckets/<bucket>/share", methods=["POST"])
def share(bucket: str):
    key = request.form.get("key", "")
    expires = request.form.get("expires", "3600")
    if expires not in SHARE_EXPIRIES:
        abort(400, "Choose one of the offered expiry times.")
    url = request.host_url.rstrip("/") + _presigned("GET", bucket, key, {}, int(expires))
    return render_template("console/share.html", user=_user(), bucket=bucket, key=key, url=url,
                           expiry=SHARE_EXPIRIES[expires])


@blueprint.route("/buckets/<bucket>/settings", methods=["GET", "POST"])
def settings(bucket: str):
    svc, user = _svc(), _user()
    message = None
    try:
        if request.method == "POST":
            message = _change_setting(svc, user, bucket)
        status = versions.get_bucket_versioning(svc, user, bucket)
        acl = bucket_ops.get_bucket_acl(svc, user, bucket)
        try:
            current_policy = policy.get_bucket_policy(svc, user, bucket)
        except errors.NoSuchBucketPolicy:
            current_policy = ""
        try:
            rules = lifecycle.get_bucket_lifecycle_configuration(svc, user, bucket)
        except errors.NoSuchLifecycleConfiguration:
            rules = []
    except errors.S3Error as err:
        return redirect(url_for(".bucket_list", error=f"{err.code}: {err.message}"))
    record = svc.meta.get_bucket(bucket)
    cors = json.dumps(json.loads(record.cors), indent=2) if record and record.cors else ""
    return render_template("console/settings.html", user=user, bucket=bucket, versioning=status, acl=acl,
                           policy=current_policy, lifecycle=json.dumps(rules, indent=2) if rules else "",
                           cors=cors, message=message, error=request.args.get("error"))


def _change_setting(svc, user, bucket: str) -> str:
    action = request.form.get("action")
    if action == "versioning":
        status = request.form.get("status")
        if status not in ("Enabled", "Suspended"):
            abort(400)
        versions.put_bucket_versioning(svc, user, bucket, status, None, None)
        return f"Versioning {status.lower()}."
    if action == "policy":
        text = request.form.get("policy", "").strip()
        if text:
            policy.put_bucket_policy(svc, user, bucket, text)
            return "Policy saved."
        policy.delete_bucket_policy(svc, user, bucket)
        return "Policy deleted."
    abort(400)


# -- presigned URLs for the browser ----------------------------------------------------

def _presigned(method: str, bucket: str, key: str, query: dict[str, str], expires: int) -> str:
    user = _user()
    svc = _svc()
    return presign_v4(method, request.host, object_path(bucket, key), query, user.access_key,
                      auth.secret_of(user), svc.settings.region, expires)


@blueprint.route("/api/presign", methods=["POST"])
def presign():
    """{method, bucket, key, query} -> {url}: a URL signed for the signed-in user,
    valid 15 minutes, for the object operations an upload or download needs."""
    body = request.get_json(silent=True) or {}
    method, bucket, key = body.get("method"), body.get("bucket"), body.get("key")
    query = body.get("query") or {}
    if not (isinstance(bucket, str) and isinstance(key, str) and key and isinstance(query, dict)
            and all(isinstance(v, str) for v in query.values())):
        abort(400)
    if (method, tuple(sorted(query))) not in _PRESIGNABLE:
        abort(400, "Not an operation the console signs.")
    return jsonify(url=_presigned(method, bucket, key, query, 900))


@blueprint.app_errorhandler(400)
def _bad_request(exc):
    if not request.path.startswith(("/console", "/-/console")):
        return exc
    return render_template("console/error.html", message=exc.description), 400
