"""Making SigV4 presigned URLs (the server's own: the web console hands them to the browser).

The URL verifies exactly as a client SDK's would (sigv4.verify_presigned): host
is the one signed header, the payload is UNSIGNED-PAYLOAD.
"""
from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import quote

from . import sigv4


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def object_path(bucket: str, key: str | None = None) -> str:
    """The path-style request path, percent-encoded as SDKs encode it."""
    return f"/{_encode(bucket)}" + (f"/{quote(key, safe='/-_.~')}" if key else "")


def presign_v4(method: str, host: str, path: str, query: dict[str, str], access_key: str, secret: str,
               region: str, expires: int, now: datetime | None = None) -> str:
    """``path?query`` with the X-Amz-* signature parameters, valid ``expires`` seconds."""
    if not 1 <= expires <= sigv4.MAX_PRESIGN_EXPIRES:
        raise ValueError("expires must be between 1 second and 7 days")
    now = now or datetime.now(timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    scope = f"{day}/{region}/s3/aws4_request"
    params = dict(query)
    params.update({"X-Amz-Algorithm": sigv4.ALGORITHM, "X-Amz-Credential": f"{access_key}/{scope}",
                   "X-Amz-Date": amz_date, "X-Amz-Expires": str(expires), "X-Amz-SignedHeaders": "host"})
    canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(params.items()))
    request = sigv4.canonical_request(method, sigv4.canonical_uri(path), canonical_query, {"host": host},
                                      ("host",), sigv4.UNSIGNED_PAYLOAD)
    signature = sigv4.sign(sigv4.signing_key(secret, day, region, "s3"),
                           sigv4.string_to_sign(amz_date, scope, request))
    return f"{path}?{canonical_query}&X-Amz-Signature={signature}"
