"""The S3 blueprint: every path that is not an operator endpoint is an S3 request.

One view does the whole request path: parse -> resolve the AWS operation ->
authenticate -> refuse what is not done -> decide on the bucket policy -> run
the handler -> render. Werkzeug's router only sees ``/`` and
``/<path>``; bucket and key come from the raw URI, so keys keep ``//``, ``%2F``
and trailing slashes exactly as sent.
"""
from __future__ import annotations

import logging
from contextlib import nullcontext

from flask import Blueprint, current_app, request
from werkzeug.routing import PathConverter

from .. import errors
from ..logsafe import escape
from ..metadata.records import MetadataUnavailable
from ..storage.base import StorageError, StorageThrottled, StorageTimeout, StorageUnavailable
from ..service import access, buckets
from . import cors
from .authorize import authorize
from .handlers import load_all
from .request import CredentialCache, authenticate, parse_request, settle_signature
from .responses import render, render_error
from .routing import resolve
from .unsupported import check as refuse_unsupported

log = logging.getLogger("bleepstore.s3")

blueprint = Blueprint("s3", __name__)
_ROUTE_TEMPLATES = ("/", "/{bucket}", "/{bucket}/{key}")  # metric labels: never the raw path
_METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH"]
HANDLERS = load_all()
# Requests that change no bucket row: within one, each bucket's row is read once
# (service/buckets.rows_read_once). The reads, and the writes of objects and uploads.
_OBJECT_WRITES = frozenset({
    "PutObject", "PostObject", "CopyObject", "DeleteObject", "DeleteObjects", "CreateMultipartUpload",
    "UploadPart", "UploadPartCopy", "CompleteMultipartUpload", "AbortMultipartUpload", "PutObjectAcl",
    "PutObjectTagging", "DeleteObjectTagging", "PutObjectRetention", "PutObjectLegalHold"})


def _keeps_bucket_rows(operation: str) -> bool:
    return operation.startswith(("Get", "Head", "List")) or operation in _OBJECT_WRITES


def _reads_once(req):
    """rows_read_once for this request, or nothing. A GetObject or HeadObject of
    the current version (whole) announces its object read: one statement reads
    the object with its bucket's row."""
    if not _keeps_bucket_rows(req.operation):
        return nullcontext()
    if req.operation in ("GetObject", "HeadObject") and "versionId" not in req.query \
            and "partNumber" not in req.query:
        return buckets.rows_read_once((req.bucket, req.key, req.operation == "GetObject"))
    return buckets.rows_read_once()


@blueprint.route("/", methods=_METHODS, strict_slashes=False)
@blueprint.route("/<anything:_path>", methods=_METHODS, strict_slashes=False, merge_slashes=False)
def s3_request(_path: str = ""):
    environ = request.environ
    request_id = environ["bleepstore.request_id"]
    state = current_app.extensions["bleepstore"]
    req = None
    try:
        req = parse_request(environ, request_id)
        environ["bleepstore.route"] = _ROUTE_TEMPLATES[(req.bucket is not None) + (req.key is not None)]
        environ["bleepstore.bucket"], environ["bleepstore.key"] = req.bucket, req.key  # for the access log
        if req.method == "OPTIONS":  # a CORS preflight: browsers never sign it
            return cors.preflight(state.services, req)
        req.operation = environ["bleepstore.operation"] = resolve(
            req.method, req.bucket, req.key, req.query, req.headers)
        authenticate(req, state.credentials, state.services.settings.region)
        decided = None
        with _reads_once(req):
            try:
                handler = HANDLERS.get(req.operation)
                if handler is None:
                    raise errors.NotImplemented(f"{req.operation} is not implemented.")
                refuse_unsupported(state.services, req)  # before the handler reads or stores anything
                decided = authorize(state.services, req)  # the bucket policy's word (service/access.py)
                result = handler(state.services, req)
                settle_signature(req)  # a no-op: the handler read (and so proved) its body
                return render(result, req.method, request_id)
            except Exception:
                # A signature over a streamed body is proven only by the body: until
                # then neither the policy's nor the handler's error is the answer
                # (settle raises SignatureDoesNotMatch instead).
                settle_signature(req)
                raise
            finally:
                if decided is not None:
                    access.reset(decided)
    except errors.S3Error as err:
        return render_error(err, environ["REQUEST_METHOD"], req.resource if req else "/", request_id)
    except MetadataUnavailable as exc:
        log.warning("metadata database unavailable in %s (request %s): %s", req.operation if req else "?",
                    request_id, escape(str(exc)))
        return render_error(errors.ServiceUnavailable(), environ["REQUEST_METHOD"], req.resource if req else "/",
                            request_id)
    except StorageError as exc:
        log.warning("storage backend failed in %s (request %s): %s", req.operation if req else "?", request_id,
                    escape(str(exc)))  # a backend's message may quote the key
        return render_error(_storage_error(exc), environ["REQUEST_METHOD"], req.resource if req else "/",
                            request_id)
    except Exception:
        log.exception("internal error in %s (request %s)", req.operation if req else "?", request_id)
        return render_error(errors.InternalError(), environ["REQUEST_METHOD"],
                            req.resource if req else "/", request_id)


@blueprint.after_request
def _cors_headers(response):
    """Every answer (errors too) to a cross-origin request carries its CORS headers."""
    return cors.add_headers(current_app.extensions["bleepstore"].services, request.environ, response)


def _storage_error(exc: StorageError) -> errors.S3Error:
    """A backing-store failure as the S3 error a client knows how to handle."""
    if isinstance(exc, StorageThrottled):
        return errors.SlowDown()
    if isinstance(exc, StorageTimeout):
        return errors.RequestTimeout()
    if isinstance(exc, StorageUnavailable):
        return errors.ServiceUnavailable()
    return errors.InternalError()  # includes BlobNotFound: metadata pointing at missing data


def register_http_errors(app) -> None:
    """Werkzeug's own HTTP errors (an unknown method, say) answer as S3 XML, not HTML."""
    from werkzeug.exceptions import HTTPException

    by_status = {404: errors.NoSuchKey, 405: errors.MethodNotAllowed, 411: errors.MissingContentLength,
                 413: errors.EntityTooLarge}

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        environ = request.environ
        err_class = by_status.get(exc.code or 500) or (
            errors.InvalidRequest if (exc.code or 500) < 500 else errors.InternalError)
        return render_error(err_class(), environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/"),
                            environ.get("bleepstore.request_id", "0"))


class AnythingConverter(PathConverter):
    """Every remaining path, newlines included (S3 keys may hold any character)."""
    regex = r"[\s\S]*"
    part_isolating = False


class AppState:
    """Per-worker objects the S3 view needs, kept in app.extensions['bleepstore']."""

    def __init__(self, services) -> None:
        self.services = services
        from ..service.credentials import lookup
        self.credentials = CredentialCache(lambda key: lookup(services, key),
                                           services.settings.credential_cache_seconds)
