"""The signed policy of a POST Object (browser form upload): decoding, expiration,
conditions, and the SigV4 / SigV2 form signatures. Pure functions, no Flask.

AWS S3 User Guide, "Creating a POST policy" and "Browser-based uploads using POST
(AWS Signature Version 4)"; the V2 form is "Browser-Based Uploads Using POST
(AWS Signature Version 2)". The policy is base64 JSON:
``{"expiration": "2026-01-01T00:00:00Z", "conditions": [...]}`` where a condition is
``{"field": "value"}`` (exact match), ``["eq", "$field", "value"]``,
``["starts-with", "$field", "prefix"]`` or ``["content-length-range", min, max]``.
Every form field except the file, the policy, the signature fields and
``x-ignore-*`` must be covered by a condition.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Mapping

from .. import errors
from . import sigv4

# Form fields a policy need not (and a signature cannot) cover.
EXEMPT_FIELDS = frozenset({"file", "policy", "x-amz-signature", "signature", "awsaccesskeyid"})
EXEMPT_PREFIX = "x-ignore-"
# Fields whose value may be a comma-separated list, each item checked by starts-with.
LIST_FIELDS = frozenset({"content-type"})
MAX_POLICY_BYTES = 20 * 1024

SecretLookup = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Condition:
    operator: str          # "eq", "starts-with" or "content-length-range"
    field: str             # lower-cased, without "$" ("" for content-length-range)
    value: object          # a str, or (min, max) for content-length-range
    source: str            # the condition as written, for the error message


@dataclass
class Policy:
    expiration: datetime
    conditions: list[Condition] = field(default_factory=list)

    @property
    def length_range(self) -> tuple[int, int | None]:
        """The (min, max) object size every content-length-range allows."""
        low, high = 0, None
        for c in self.conditions:
            if c.operator == "content-length-range":
                low = max(low, c.value[0])
                high = c.value[1] if high is None else min(high, c.value[1])
        return low, high


def _invalid(detail: str) -> errors.S3Error:
    return errors.InvalidPolicyDocument(f"Invalid Policy: {detail}")


def decode(encoded: str) -> Policy:
    """The policy field: base64 of a JSON document (InvalidPolicyDocument otherwise)."""
    if len(encoded) > MAX_POLICY_BYTES:
        raise errors.MaxPostPreDataLengthExceededError()
    try:
        # Some encoders wrap base64 at 60 or 76 columns; the signature covers the field as sent.
        document = json.loads(base64.b64decode("".join(encoded.split()), validate=True).decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _invalid("Invalid JSON.") from None
    if not isinstance(document, dict):
        raise _invalid("Invalid JSON.")
    if "expiration" not in document:
        raise _invalid("Policy missing expiration.")
    if "conditions" not in document:
        raise _invalid("Policy missing conditions.")
    if not isinstance(document["conditions"], list):
        raise _invalid("Policy conditions must be a list.")
    return Policy(_expiration(document["expiration"]), [c for raw in document["conditions"] for c in _conditions(raw)])


def _expiration(value: object) -> datetime:
    """ISO 8601 (``2026-12-30T12:00:00.000Z``), UTC when no zone is given."""
    if not isinstance(value, str):
        raise _invalid("Invalid 'expiration' value.")
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(f"Invalid 'expiration' value: '{value}'") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _conditions(raw: object) -> list[Condition]:
    source = json.dumps(raw, separators=(", ", ": "))
    if isinstance(raw, dict):  # {"field": "value"}: exact match on each entry
        if not raw:
            raise _invalid(f"Invalid Simple-Condition: {source}")
        out = []
        for name, value in raw.items():
            if not isinstance(value, str):
                raise _invalid(f"Invalid Simple-Condition: value must be a string: {source}")
            out.append(Condition("eq", name.lower(), value, source))
        return out
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
        raise _invalid(f"Invalid Condition: {source}")
    operator = raw[0].lower()
    if operator == "content-length-range":
        if len(raw) != 3:
            raise _invalid(f"Invalid content-length-range: {source}")
        low, high = _int(raw[1], source), _int(raw[2], source)
        if low > high:
            raise _invalid(f"Invalid content-length-range: {source}")
        return [Condition(operator, "", (low, high), source)]
    if operator not in ("eq", "starts-with"):
        raise _invalid(f"Invalid Condition: unknown operation '{raw[0]}': {source}")
    if len(raw) != 3 or not isinstance(raw[1], str) or not raw[1].startswith("$") or not isinstance(raw[2], str):
        raise _invalid(f"Invalid Condition: {source}")
    return [Condition(operator, raw[1][1:].lower(), raw[2], source)]


def _int(value: object, source: str) -> int:
    if isinstance(value, bool):
        raise _invalid(f"Invalid content-length-range: {source}")
    try:
        number = int(value)  # AWS accepts the bounds as numbers or numeric strings
    except (TypeError, ValueError):
        raise _invalid(f"Invalid content-length-range: {source}") from None
    if number < 0:
        raise _invalid(f"Invalid content-length-range: {source}")
    return number


def _denied(detail: str) -> errors.S3Error:
    return errors.AccessDenied(f"Invalid according to Policy: {detail}")


def check(policy: Policy, fields: Mapping[str, str], now: datetime) -> None:
    """Expiration, every condition, and no form field left uncovered. ``fields``
    are the form's fields (names lower-cased) plus ``bucket``, the bucket posted to."""
    if now >= policy.expiration:
        raise _denied("Policy expired.")
    covered = set()
    for c in policy.conditions:
        if c.operator == "content-length-range":
            continue  # checked on the streamed size
        covered.add(c.field)
        value = fields.get(c.field, "")
        if c.operator == "eq":
            ok = value == c.value
        elif c.field in LIST_FIELDS:
            ok = all(item.strip().startswith(c.value) for item in value.split(","))
        else:
            ok = value.startswith(c.value)
        if not ok:
            raise _denied(f"Policy Condition failed: {c.source}")
    extra = [name for name in fields if name not in covered and name not in EXEMPT_FIELDS
             and not name.startswith(EXEMPT_PREFIX) and name != "bucket"]
    if extra:
        raise _denied(f"Extra input fields: {', '.join(extra)}")


def verify_v4(fields: Mapping[str, str], lookup_secret: SecretLookup, region: str) -> str:
    """The SigV4 form signature: x-amz-signature is the hex HMAC-SHA256 of the
    base64 policy under the signing key of x-amz-credential's scope, whose date
    is x-amz-date's. Returns the access key."""
    algorithm = fields.get("x-amz-algorithm", "")
    if algorithm != sigv4.ALGORITHM:
        raise errors.InvalidArgument("Only AWS4-HMAC-SHA256 is supported for the x-amz-algorithm form field.",
                                     ArgumentName="x-amz-algorithm", ArgumentValue=algorithm)
    for name in ("x-amz-credential", "x-amz-date", "x-amz-signature"):
        if not fields.get(name):
            raise _missing(name)
    access_key, date, scope_region, service = sigv4.parse_credential(
        fields["x-amz-credential"], errors.AuthorizationQueryParametersError)
    amz_date = fields["x-amz-date"]
    sigv4.parse_amz_date(amz_date)
    if date != amz_date[:8]:
        raise errors.AuthorizationQueryParametersError(
            f"Invalid credential date \"{date}\". This date is not the same as X-Amz-Date: \"{amz_date[:8]}\".")
    sigv4.check_region(scope_region, region, errors.AuthorizationQueryParametersError)
    secret = lookup_secret(access_key)
    if secret is None:
        raise errors.InvalidAccessKeyId(AWSAccessKeyId=access_key)
    expected = sigv4.sign(sigv4.signing_key(secret, date, scope_region, service), fields["policy"])
    if not hmac.compare_digest(expected.encode(), fields["x-amz-signature"].strip().lower().encode()):
        raise errors.SignatureDoesNotMatch(AWSAccessKeyId=access_key, StringToSign=fields["policy"])
    return access_key


def verify_v2(fields: Mapping[str, str], lookup_secret: SecretLookup) -> str:
    """The SigV2 form signature: base64 HMAC-SHA1 of the base64 policy with the
    secret key of AWSAccessKeyId. Returns the access key."""
    access_key = fields.get("awsaccesskeyid", "")
    if not access_key:
        raise _missing("AWSAccessKeyId")
    if not fields.get("signature"):
        raise _missing("Signature")
    secret = lookup_secret(access_key)
    if secret is None:
        raise errors.InvalidAccessKeyId(AWSAccessKeyId=access_key)
    expected = base64.b64encode(hmac.new(secret.encode(), fields["policy"].encode(), hashlib.sha1).digest())
    if not hmac.compare_digest(expected, fields["signature"].strip().encode()):
        raise errors.SignatureDoesNotMatch(AWSAccessKeyId=access_key, StringToSign=fields["policy"])
    return access_key


def _missing(name: str) -> errors.S3Error:
    return errors.InvalidArgument(f"Bucket POST must contain a field named '{name}'.  If it is specified, "
                                  f"please check the order of the fields.", ArgumentName=name, ArgumentValue="")


def authenticate(fields: Mapping[str, str], bucket: str, lookup_secret: SecretLookup, region: str,
                 now: datetime) -> tuple[str | None, Policy | None]:
    """Who signed the form (None: an anonymous form, which has neither policy nor
    signature) and its policy, checked against the fields."""
    v4 = "x-amz-signature" in fields or "x-amz-algorithm" in fields or "x-amz-credential" in fields
    v2 = "signature" in fields or "awsaccesskeyid" in fields
    if "policy" not in fields:
        if v4 or v2:
            raise _missing("policy")
        return None, None
    if v4 and v2:
        raise errors.InvalidArgument("Only one auth mechanism allowed; the form carries both SigV4 and SigV2 "
                                     "signature fields", ArgumentName="x-amz-signature")
    if not (v4 or v2):
        raise _missing("x-amz-signature")
    access_key = verify_v4(fields, lookup_secret, region) if v4 else verify_v2(fields, lookup_secret)
    policy = decode(fields["policy"])  # only a signed policy is worth reading
    check(policy, dict(fields, bucket=bucket), now)
    return access_key, policy
