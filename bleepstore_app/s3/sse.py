"""The server-side encryption headers of a request, and the ones a response echoes
(the meaning is in service/encryption.py)."""
from __future__ import annotations

from ..service import encryption

_SSE = "x-amz-server-side-encryption"
_CUSTOMER = "x-amz-server-side-encryption-customer-"
_COPY_SOURCE_CUSTOMER = "x-amz-copy-source-server-side-encryption-customer-"


def is_secure(req) -> bool:
    """HTTPS: to this server, or to the TLS-terminating proxy in front, which says
    so in X-Forwarded-Proto (believed from the peers in gunicorn's
    FORWARDED_ALLOW_IPS, default 127.0.0.1; see worker.py)."""
    return req.environ.get("wsgi.url_scheme") == "https"


def customer_key(svc, req, copy_source: bool = False) -> encryption.CustomerKey | None:
    """The request's SSE-C key (of the copy source with ``copy_source``), checked."""
    prefix = _COPY_SOURCE_CUSTOMER if copy_source else _CUSTOMER
    headers = req.headers
    algorithm, key, md5 = headers.get(prefix + "algorithm"), headers.get(prefix + "key"), headers.get(prefix + "key-MD5")
    if algorithm is None and key is None and md5 is None:
        return None
    return encryption.customer_key(algorithm, key, md5, is_secure(req), prefix)


def sse_request(svc, req) -> encryption.SseRequest | None:
    """What a write asks for: SSE-S3 / SSE-KMS headers or an SSE-C key; None for none."""
    headers = req.headers
    algorithm = headers.get(_SSE)
    kms_key_id = headers.get(_SSE + "-aws-kms-key-id")
    context = headers.get(_SSE + "-context")
    bucket_key = headers.get(_SSE + "-bucket-key-enabled")
    customer = customer_key(svc, req)
    if algorithm is None and kms_key_id is None and context is None and bucket_key is None and customer is None:
        return None
    return encryption.SseRequest(
        algorithm=algorithm.strip() if algorithm is not None else None, kms_key_id=kms_key_id, context=context,
        bucket_key=None if bucket_key is None else bucket_key.strip().lower() == "true", customer=customer)


def response_headers(svc, stored: dict | None, customer: encryption.CustomerKey | None = None,
                     sse: encryption.SseRequest | None = None) -> dict[str, str]:
    """The SSE headers of a response about an object or upload; the encryption
    context too when the write sent one."""
    out = encryption.response_headers(svc, stored, customer.key_md5 if customer is not None else None)
    if sse is not None and sse.context is not None and stored is not None and stored["algorithm"] == "aws:kms":
        out[_SSE + "-context"] = sse.context
    return out
