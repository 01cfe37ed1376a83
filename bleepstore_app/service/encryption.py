"""Server-side encryption: SSE-S3, SSE-KMS, SSE-C, and a bucket's default encryption
(PutBucketEncryption, GetBucketEncryption, DeleteBucketEncryption).

A new object's encryption is chosen once, from the request's headers or else the
bucket's default, and stored with the version (``ObjectRecord.encryption``):

    SSE-S3   {"algorithm": "AES256", "key": <data key wrapped by a master key>}
    SSE-KMS  {"algorithm": "aws:kms", "kms_key": name | "aws/s3", "context": {...},
              "bucket_key": bool, "key": <data key wrapped by that key>}
    SSE-C    {"algorithm": "SSE-C", "salt": .., "hmac": HMAC-SHA256(salt, customer key)}

The data key (for SSE-C: a key derived from the customer's key and the version's
salt, so that objects under one customer key do not open each other's blobs) is
the *object key* that crypto/stream.py derives each blob's key from. The customer's key is never stored: the salted HMAC
only tells a later request's key from a wrong one, as S3 does. The ETag of an
SSE-S3 (or unencrypted) object is the MD5 of its plaintext; of SSE-C and SSE-KMS
objects (AWS: "not an MD5 digest of their object data") a keyed digest of that
MD5 under the object key: it changes with the bytes, and says nothing about them
to whoever lacks the key.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass

from .. import errors
from ..crypto.keys import KeyRingError
from ..metadata.records import BucketRecord
from . import Caller, Services
from .buckets import require_bucket, require_owner

log = logging.getLogger(__name__)

SSE_S3 = "AES256"
SSE_KMS = "aws:kms"
SSE_KMS_DSSE = "aws:kms:dsse"
SSE_C = "SSE-C"
MANAGED_KMS_KEY = "aws/s3"  # the "AWS managed key": wrapped by the master keys
KMS_ACCOUNT = "000000000000"
ALGORITHM_HEADER = "x-amz-server-side-encryption"


@dataclass(frozen=True)
class CustomerKey:
    """An SSE-C key from a request, checked against its MD5."""
    key: bytes
    key_md5: str  # base64, as the client sent it (echoed back)


@dataclass(frozen=True)
class SseRequest:
    """What a write asks for (the x-amz-server-side-encryption* headers)."""
    algorithm: str | None = None
    kms_key_id: str | None = None
    context: str | None = None  # base64 of a JSON object, as sent
    bucket_key: bool | None = None
    customer: CustomerKey | None = None


@dataclass(frozen=True)
class Encryption:
    """A new object's (or upload's) encryption: what is stored, and its object key."""
    stored: dict
    object_key: bytes
    customer_md5: str | None = None
    context_header: str | None = None  # echoed on the write's response when sent


def customer_key(algorithm: str | None, key_b64: str | None, key_md5: str | None, secure: bool,
                 prefix: str = "x-amz-server-side-encryption-customer-") -> CustomerKey | None:
    """The SSE-C key of a request (``prefix`` names the copy-source variant), or
    None when it sends none; AWS's error for each way the three headers can be wrong."""
    if algorithm is None and key_b64 is None and key_md5 is None:
        return None
    if not secure:
        raise errors.InvalidRequest("Requests specifying Server Side Encryption with Customer provided keys "
                                    "must be made over a secure connection.")
    if algorithm is None:
        raise errors.InvalidArgument("Requests specifying Server Side Encryption with Customer provided keys must "
                                     "provide a valid encryption algorithm.", ArgumentName=prefix + "algorithm")
    if algorithm.strip() != "AES256":
        raise errors.InvalidEncryptionAlgorithmError(ArgumentName=prefix + "algorithm", ArgumentValue=algorithm)
    if key_b64 is None:
        raise errors.InvalidArgument("Requests specifying Server Side Encryption with Customer provided keys must "
                                     "provide an appropriate secret key.", ArgumentName=prefix + "key")
    try:
        key = base64.b64decode(key_b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise errors.InvalidArgument("The secret key was invalid for the specified algorithm.",
                                     ArgumentName=prefix + "key")
    if key_md5 is None:
        raise errors.InvalidArgument("Requests specifying Server Side Encryption with Customer provided keys must "
                                     "provide the client calculated MD5 of the secret key.",
                                     ArgumentName=prefix + "key-MD5")
    if not hmac.compare_digest(base64.b64encode(hashlib.md5(key).digest()).decode(), key_md5.strip()):
        raise errors.InvalidArgument("The calculated MD5 hash of the key did not match the hash that was provided.",
                                     ArgumentName=prefix + "key-MD5")
    return CustomerKey(key, key_md5.strip())


def for_new_object(svc: Services, target: BucketRecord, key: str, request: SseRequest | None,
                   object_key: bytes | None = None) -> Encryption | None:
    """The encryption of a new object in ``target``: the request's, else the
    bucket's default, else none. ``object_key`` reuses an existing object key (a
    copy whose blobs are copied as they are); by default a fresh one is drawn."""
    request = request or SseRequest()
    if request.customer is not None and request.algorithm is not None:
        raise errors.InvalidArgument("Server Side Encryption with Customer provided key is incompatible with the "
                                     "encryption method specified", ArgumentName=ALGORITHM_HEADER,
                                     ArgumentValue=request.algorithm)
    if request.algorithm not in (SSE_KMS, SSE_KMS_DSSE) and (request.kms_key_id is not None
                                                           or request.context is not None or request.bucket_key):
        raise errors.InvalidArgument("Server Side Encryption with AWS KMS managed key requires HTTP header "
                                     "x-amz-server-side-encryption : aws:kms", ArgumentName=ALGORITHM_HEADER)
    if request.customer is not None:
        salt = os.urandom(16)
        stored = {"algorithm": SSE_C, "salt": base64.b64encode(salt).decode(),
                  "hmac": base64.b64encode(_key_hmac(salt, request.customer.key)).decode()}
        return Encryption(stored, _customer_object_key(salt, request.customer.key),
                          customer_md5=request.customer.key_md5)
    algorithm, kms_key, bucket_key, context = request.algorithm, request.kms_key_id, request.bucket_key, None
    if algorithm is None:
        default = default_encryption(target)
        if default is None:
            return None
        algorithm, kms_key, bucket_key = default["algorithm"], default.get("kms_key"), default.get("bucket_key")
    elif request.context is not None:
        context = parse_context(request.context)
    check_algorithm(algorithm)
    data_key = object_key or os.urandom(32)
    if algorithm == SSE_S3:
        require_master_key(svc)
        return Encryption({"algorithm": SSE_S3, "key": svc.keys.wrap(data_key, SSE_S3)}, data_key)
    name = kms_key_name(svc, kms_key)
    if context is None:
        context = {"aws:s3:arn": f"arn:aws:s3:::{target.name}/{key}"}
    if name is None:
        require_master_key(svc)
    stored = {"algorithm": SSE_KMS, "kms_key": name or MANAGED_KMS_KEY, "context": context,
              "bucket_key": bool(bucket_key), "key": svc.keys.wrap(data_key, SSE_KMS, context, kms_key=name)}
    return Encryption(stored, data_key, context_header=request.context)


def check_algorithm(algorithm: str) -> None:
    if algorithm == SSE_KMS_DSSE:
        raise errors.NotImplemented("Dual-layer server-side encryption (aws:kms:dsse) is not implemented.",
                                    Header=ALGORITHM_HEADER)
    if algorithm not in (SSE_S3, SSE_KMS):
        raise errors.InvalidArgument("The encryption method specified is not supported",
                                     ArgumentName=ALGORITHM_HEADER, ArgumentValue=algorithm)


def require_master_key(svc: Services) -> None:
    if not svc.keys.has_master:
        raise errors.NotImplemented("Server-side encryption needs a master key on this server "
                                    "(encryption.master_keys).", Header=ALGORITHM_HEADER)


def kms_key_name(svc: Services, key_id: str | None) -> str | None:
    """The key-ring name a KMS key id (name, alias/name, key/name or an ARN of
    either) refers to; None for the managed key (none given, or alias/aws/s3)."""
    if key_id is None or not key_id.strip():
        return None
    name = key_id.strip()
    if name.startswith("arn:"):
        fields = name.split(":", 5)
        if len(fields) != 6 or fields[2] != "kms":
            raise errors.KmsNotFound(f"Invalid arn {key_id}")
        name = fields[5]
    name = name.removeprefix("alias/").removeprefix("key/")
    if name == MANAGED_KMS_KEY:
        return None
    if not svc.keys.has_kms_key(name):
        raise errors.KmsNotFound(f"Invalid keyId {key_id}")
    return name


def parse_context(header: str) -> dict:
    """x-amz-server-side-encryption-context: base64 of a JSON string-to-string map."""
    try:
        value = json.loads(base64.b64decode(header.strip(), validate=True).decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise errors.InvalidArgument("The header 'x-amz-server-side-encryption-context' shall be Base64-encoded "
                                     "UTF-8 string holding JSON which represents a string-string map",
                                     ArgumentName="x-amz-server-side-encryption-context")
    return value


def _key_hmac(salt: bytes, key: bytes) -> bytes:
    return hmac.new(salt, key, hashlib.sha256).digest()


def _customer_object_key(salt: bytes, key: bytes) -> bytes:
    return hmac.new(salt, b"bleepstore sse-c object key\x00" + key, hashlib.sha256).digest()


def check_customer_key(stored: dict | None, customer: CustomerKey | None) -> None:
    """A read of a stored version (HeadObject too) brings the SSE-C key exactly
    when the version was written with one, and the same key: S3's errors for a
    missing, wrong or needless key."""
    object_key(None, stored, customer, check_only=True)


def object_key(svc: Services | None, stored: dict | None, customer: CustomerKey | None,
               check_only: bool = False) -> bytes | None:
    """The object key that opens a stored version (None: stored in clear), with
    the SSE-C key checked (``check_customer_key``)."""
    if stored is None:
        if customer is not None:
            raise errors.InvalidRequest("The encryption parameters are not applicable to this object.")
        return None
    if stored["algorithm"] == SSE_C:
        if customer is None:
            raise errors.InvalidRequest("The object was stored using a form of Server Side Encryption. The correct "
                                        "parameters must be provided to retrieve the object.")
        salt, expected = base64.b64decode(stored["salt"]), base64.b64decode(stored["hmac"])
        if not hmac.compare_digest(_key_hmac(salt, customer.key), expected):
            raise errors.AccessDenied("The provided encryption key does not match the one the object was "
                                      "stored with.")
        return _customer_object_key(salt, customer.key)
    if customer is not None:
        raise errors.InvalidRequest("The encryption parameters are not applicable to this object.")
    if check_only:
        return None
    try:
        if stored["algorithm"] == SSE_S3:
            return svc.keys.unwrap(stored["key"], SSE_S3)
        return svc.keys.unwrap(stored["key"], SSE_KMS, stored.get("context"),
                               kms=stored["kms_key"] != MANAGED_KMS_KEY)
    except KeyRingError as exc:
        log.error("cannot open a stored data key: %s", exc)
        raise errors.InternalError() from None


def plaintext_etag(stored: dict | None) -> bool:
    """Whether the ETag is the plaintext's MD5 (clear and SSE-S3), or a keyed
    digest of it (SSE-C, SSE-KMS)."""
    return stored is None or stored["algorithm"] == SSE_S3


def etag(stored: dict | None, object_key: bytes | None, plaintext_md5_hex: str) -> str:
    """The ETag of an object (or part) written with this encryption."""
    if plaintext_etag(stored):
        return plaintext_md5_hex
    return hmac.new(object_key, b"bleepstore etag\x00" + bytes.fromhex(plaintext_md5_hex),
                    hashlib.sha256).hexdigest()[:32]


def response_headers(svc: Services, stored: dict | None, customer_md5: str | None = None) -> dict[str, str]:
    """The SSE headers S3 echoes on a response about an object (or upload)."""
    if stored is None:
        return {}
    algorithm = stored["algorithm"]
    if algorithm == SSE_C:
        out = {"x-amz-server-side-encryption-customer-algorithm": "AES256"}
        if customer_md5 is not None:
            out["x-amz-server-side-encryption-customer-key-MD5"] = customer_md5
        return out
    out = {ALGORITHM_HEADER: algorithm}
    if algorithm == SSE_KMS:
        out["x-amz-server-side-encryption-aws-kms-key-id"] = kms_arn(svc, stored["kms_key"])
        if stored.get("bucket_key"):
            out["x-amz-server-side-encryption-bucket-key-enabled"] = "true"
    return out


def kms_arn(svc: Services, name: str) -> str:
    region = svc.settings.region
    if name == MANAGED_KMS_KEY:
        return f"arn:aws:kms:{region}:{KMS_ACCOUNT}:alias/{MANAGED_KMS_KEY}"
    return f"arn:aws:kms:{region}:{KMS_ACCOUNT}:key/{name}"


# -- bucket default encryption ----------------------------------------------------


def default_encryption(target: BucketRecord) -> dict | None:
    return json.loads(target.encryption) if target.encryption else None


def _owned_bucket(svc: Services, caller: Caller | None, bucket: str) -> BucketRecord:
    target = require_bucket(svc, bucket)
    require_owner(target, caller)
    return target


def get_bucket_encryption(svc: Services, caller: Caller | None, bucket: str) -> dict:
    """GetBucketEncryption: {"algorithm", "kms_key" (or None), "bucket_key"}."""
    config = default_encryption(_owned_bucket(svc, caller, bucket))
    if config is None:
        raise errors.ServerSideEncryptionConfigurationNotFoundError(BucketName=bucket)
    return config


def put_bucket_encryption(svc: Services, caller: Caller | None, bucket: str, algorithm: str,
                          kms_key_id: str | None, bucket_key: bool) -> None:
    """PutBucketEncryption (one rule: the default algorithm and KMS key)."""
    _owned_bucket(svc, caller, bucket)
    check_algorithm(algorithm)
    config: dict = {"algorithm": algorithm, "bucket_key": bucket_key}
    if algorithm == SSE_S3:
        if kms_key_id is not None:
            raise errors.InvalidArgument("a KMSMasterKeyID is not applicable if the default sse algorithm is not "
                                         "aws:kms", ArgumentName="ApplyServerSideEncryptionByDefault")
        require_master_key(svc)
    else:
        name = kms_key_name(svc, kms_key_id)
        if name is None:
            require_master_key(svc)
        config["kms_key"] = name or MANAGED_KMS_KEY
    svc.meta.set_bucket_encryption(bucket, json.dumps(config, sort_keys=True))


def delete_bucket_encryption(svc: Services, caller: Caller | None, bucket: str) -> None:
    """DeleteBucketEncryption: new objects are stored in clear again."""
    _owned_bucket(svc, caller, bucket)
    svc.meta.set_bucket_encryption(bucket, None)


# -- master key rotation --------------------------------------------------------


def rewrap_data_keys(svc: Services, batch: int = 500) -> dict[str, int]:
    """Re-wrap every stored data key that a master key wraps (SSE-S3, managed
    SSE-KMS) and that is not under the active master key: metadata only, no
    object is rewritten. Per table, how many rows were re-wrapped. Safe to run
    while serving, and again: a row changed meanwhile is left to the next pass."""
    from ..metadata.encryption import ENCRYPTED_TABLES
    require_master_key(svc)
    counts = {}
    for table in ENCRYPTED_TABLES:
        done, after = 0, None
        while rows := svc.meta.encrypted_rows(table, after, batch):
            for key, text in rows:
                new = _rewrapped(svc, json.loads(text))
                if new is not None and svc.meta.replace_encryption(table, key, text, json.dumps(new)):
                    done += 1
            after = rows[-1][0]
        counts[table] = done
    return counts


def _rewrapped(svc: Services, stored: dict) -> dict | None:
    algorithm = stored["algorithm"]
    if algorithm == SSE_S3:
        purpose, context = SSE_S3, None
    elif algorithm == SSE_KMS and stored["kms_key"] == MANAGED_KMS_KEY:
        purpose, context = SSE_KMS, stored.get("context")
    else:
        return None  # SSE-C (no stored key) or a named KMS key (its own key ring entry)
    if stored["key"]["key"] == svc.keys.active:
        return None
    data_key = svc.keys.unwrap(stored["key"], purpose, context)
    return dict(stored, key=svc.keys.wrap(data_key, purpose, context))
