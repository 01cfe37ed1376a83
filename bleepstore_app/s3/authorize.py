"""The request's authorization decision over the bucket policy, made once before the handler.

AWS's order: an explicit Deny in the bucket policy refuses the request (except
the policy operations for the bucket owner, who is never locked out); an explicit
Allow grants it, and the owner and ACL checks of service/ accept that
(service/access.py); otherwise those checks decide as they always did. The
bucket's public access block and ownership controls are recorded for them too.
A copy's source object is decided on the source bucket's policy (s3:GetObject).

Condition keys come from the request: the client address (behind a trusted
proxy, the one it saw: worker.py puts it in ``bleepstore.client_ip``), TLS, time,
Referer, the caller, the listing parameters, every x-amz-* header as ``s3:<name>``,
the signature version, and an object's existing tags (read only if a condition
asks).
"""
from __future__ import annotations

from contextvars import Token
from datetime import datetime, timezone
from urllib.parse import parse_qsl

from .. import errors, policy
from ..policy import actions
from ..service import access, buckets, ownership_controls, public_access_block
from ..service import policy as policies
from . import headers as h

_COPIES = frozenset({"CopyObject", "UploadPartCopy"})
_LIST_PARAMETERS = (("prefix", "s3:prefix"), ("delimiter", "s3:delimiter"), ("max-keys", "s3:max-keys"))


def authorize(svc, req, form: dict[str, str] | None = None, key: str | None = None) -> Token | None:
    """Decide ``req`` on its bucket's policy: raise AccessDenied on a Deny, else
    record the decision for the service's checks; the token undoes that after the
    request (None: nothing was recorded). A PostObject is decided by its handler,
    once the form has named its signer and ``key`` (its fields are ``form``)."""
    if not req.bucket or (req.operation == "PostObject" and form is None):
        return None
    version_id = req.query.get("versionId")
    action = actions.action_for(req.operation, version_id)
    if action is None:
        return None
    bucket = buckets.lookup(svc, req.bucket)
    if bucket is None:
        return None  # the handler answers NoSuchBucket
    source = _copy_source(svc, req)
    involved = [bucket] + ([source[0]] if source is not None else [])
    settings = {b.name: _settings(b) for b in involved}
    if all(b.policy is None for b in involved) and \
            not any(s.acls_disabled or s.ignore_public_acls for s in settings.values()):
        return None  # the common case: nothing to decide beyond the ACLs

    caller = req.caller
    context = _Context(svc, req, form)
    records = {bucket.name: bucket}

    def decide(action_name: str, bucket_name: str, key: str | None) -> str | None:
        record = records.get(bucket_name)
        if record is None:
            record = records[bucket_name] = buckets.lookup(svc, bucket_name)
        if record is None or record.policy is None:
            return None
        return _decision(record, caller, action_name.lower(), bucket_name, key, context)

    allowed = set()
    if req.operation != "DeleteObjects":  # decided per key (service/copy.py)
        if key is None:
            key = req.key if actions.RESOURCE_TYPE.get(action.lower()) == actions.OBJECT else None
        if decide(action, bucket.name, key) == "Allow":
            allowed.add((bucket.name, None))
            if key is not None and req.operation not in _COPIES:
                allowed.add((bucket.name, key))
    if source is not None:
        source_bucket, source_key, source_version = source
        records.setdefault(source_bucket.name, source_bucket)
        source_action = "s3:GetObjectVersion" if source_version else "s3:GetObject"
        if decide(source_action, source_bucket.name, source_key) == "Allow":
            allowed.add((source_bucket.name, source_key))
    return access.use(access.Access(allowed=frozenset(allowed), buckets=settings, primary=bucket.name,
                                    decide=decide))


def _settings(bucket) -> access.BucketAccess:
    return access.BucketAccess(bucket.owner_id, public_access_block.flags(bucket)["IgnorePublicAcls"],
                               ownership_controls.effective(bucket) == ownership_controls.ENFORCED)


def _decision(bucket, caller, action: str, bucket_name: str, key: str | None, context) -> str | None:
    resource = f"arn:aws:s3:::{bucket_name}" + (f"/{key}" if key is not None else "")
    document = policies.loaded(bucket)
    is_owner = caller is not None and caller.owner_id == bucket.owner_id
    answer = policy.evaluate(document, policy.Request(caller.owner_id if caller else None, action, resource,
                                                      context.for_key(bucket_name, key)))
    if answer == "Deny":
        if is_owner and action in _OWNER_ALWAYS:
            return None
        raise errors.AccessDenied()
    if answer == "Allow" and not is_owner and public_access_block.flags(bucket)["RestrictPublicBuckets"] \
            and policy.is_public(document):
        return None  # RestrictPublicBuckets: a public policy grants only the owner's own account
    return answer


_OWNER_ALWAYS = frozenset(a.lower() for a in actions.OWNER_ALWAYS)


def _copy_source(svc, req):
    """(source bucket record, key, version id) of a copy whose source bucket exists."""
    if req.operation not in _COPIES or "x-amz-copy-source" not in req.headers:
        return None
    source_bucket, source_key, source_version = h.copy_source(req.headers["x-amz-copy-source"])
    record = buckets.lookup(svc, source_bucket)
    return (record, source_key, source_version) if record is not None else None


class _Context:
    """The request's condition keys, lower-cased; computed once, per object for tags."""

    def __init__(self, svc, req, form: dict[str, str] | None = None) -> None:
        self._svc, self._req = svc, req
        environ, caller, headers = req.environ, req.caller, req.headers
        now = datetime.now(timezone.utc)
        values: dict[str, tuple[str, ...]] = {
            "aws:sourceip": (environ.get("bleepstore.client_ip") or environ.get("REMOTE_ADDR") or "",),
            "aws:securetransport": ("true" if environ.get("wsgi.url_scheme") == "https" else "false",),
            "aws:currenttime": (now.strftime("%Y-%m-%dT%H:%M:%SZ"),),
            "aws:epochtime": (str(int(now.timestamp())),),
            "aws:principaltype": ("Anonymous" if caller is None else "User",),
        }
        for header, key in (("Referer", "aws:referer"), ("User-Agent", "aws:useragent")):
            if header in headers:
                values[key] = (headers[header],)
        if caller is not None:
            values["aws:username"] = (caller.display_name,)
            values["aws:userid"] = (caller.owner_id,)
            authorization = headers.get("Authorization", "")
            v2 = authorization.startswith("AWS ") or "AWSAccessKeyId" in req.query
            values["s3:signatureversion"] = ("AWS" if v2 else "AWS4-HMAC-SHA256",)
            values["s3:authtype"] = ("POST" if form is not None else
                                     "REST-HEADER" if authorization else "REST-QUERY-STRING",)
        for parameter, key in _LIST_PARAMETERS:
            if parameter in req.query:
                values[key] = (req.query[parameter],)
        if "versionId" in req.query:
            values["s3:versionid"] = (req.query["versionId"],)
        for name in environ:
            if name.startswith("HTTP_X_AMZ_"):
                header = name[5:].replace("_", "-").lower()
                values["s3:" + header] = (environ[name],)
        for name, value in (form or {}).items():  # a form's fields stand for its headers
            if name.lower().startswith("x-amz-") or name.lower() == "acl":
                values["s3:" + ("x-amz-acl" if name.lower() == "acl" else name.lower())] = (value,)
        tagging = headers.get("x-amz-tagging")
        if tagging is not None:
            pairs = parse_qsl(tagging, keep_blank_values=True)
            values["s3:requestobjecttagkeys"] = tuple(k for k, _ in pairs)
            values.update({f"s3:requestobjecttag/{k.lower()}": (v,) for k, v in pairs})
        self._values = values

    def for_key(self, bucket: str, key: str | None) -> "_ObjectContext":
        return _ObjectContext(self, bucket, key)

    def existing_tags(self, bucket: str, key: str | None) -> dict[str, str] | None:
        if key is None:
            return None
        version_id = self._req.query.get("versionId") if bucket == self._req.bucket else None
        try:
            record = self._svc.meta.get_object(bucket, key, version_id)
        except Exception:  # a malformed version id: the handler will say so
            return None
        return {k.lower(): v for k, v in record.tags.items()} if record and not record.delete_marker else None


class _ObjectContext:
    """The request's keys plus s3:ExistingObjectTag/<key> of one object."""

    def __init__(self, base: _Context, bucket: str, key: str | None) -> None:
        self._base, self._bucket, self._key = base, bucket, key
        self._tags: dict | None = None
        self._loaded = False

    def get(self, name: str):
        if name.startswith("s3:existingobjecttag/"):
            if not self._loaded:
                self._tags, self._loaded = self._base.existing_tags(self._bucket, self._key), True
            value = (self._tags or {}).get(name[len("s3:existingobjecttag/"):])
            return (value,) if value is not None else None
        return self._base._values.get(name)
