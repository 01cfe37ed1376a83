"""The POST policy (auth/post_policy.py): decoding, every condition type on both
sides, extra fields, expiration, and the SigV4 / SigV2 form signatures."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import pytest

from bleepstore_app import errors
from bleepstore_app.auth import post_policy

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=timezone.utc)
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def encode(document) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def policy(*conditions, expiration="2026-12-03T09:00:00.000Z"):
    return post_policy.decode(encode({"expiration": expiration, "conditions": list(conditions)}))


def lookup(access_key):
    return SECRET if access_key == "AKIDEXAMPLE" else None


# -- decoding ------------------------------------------------------------------------

@pytest.mark.parametrize("encoded, detail", [
    ("not base64!", "Invalid JSON."),
    (base64.b64encode(b"{nope").decode(), "Invalid JSON."),
    (base64.b64encode(b"\xff\xfe").decode(), "Invalid JSON."),
    (encode([1, 2]), "Invalid JSON."),
    (encode({"conditions": []}), "Policy missing expiration."),
    (encode({"expiration": "2026-12-03T09:00:00Z"}), "Policy missing conditions."),
    (encode({"expiration": "tomorrow", "conditions": []}), "Invalid 'expiration' value: 'tomorrow'"),
    (encode({"expiration": "2026-12-03T09:00:00Z", "conditions": [["matches", "$key", "x"]]}), None),
    (encode({"expiration": "2026-12-03T09:00:00Z", "conditions": [["eq", "key", "x"]]}), None),
    (encode({"expiration": "2026-12-03T09:00:00Z", "conditions": [["content-length-range", 5, 1]]}), None),
    (encode({"expiration": "2026-12-03T09:00:00Z", "conditions": [["content-length-range", "a", 1]]}), None),
    (encode({"expiration": "2026-12-03T09:00:00Z", "conditions": [{"key": 5}]}), None),
])
def test_malformed_policies_are_invalid_policy_document(encoded, detail):
    with pytest.raises(errors.InvalidPolicyDocument) as exc:
        post_policy.decode(encoded)
    assert exc.value.status == 400 and exc.value.message.startswith("Invalid Policy: ")
    if detail:
        assert exc.value.message == "Invalid Policy: " + detail


def test_length_range_is_the_intersection():
    p = policy(["content-length-range", 10, 100], ["content-length-range", "20", "50"])
    assert p.length_range == (20, 50)
    assert policy().length_range == (0, None)


# -- conditions ----------------------------------------------------------------------

def test_expired_policy():
    p = policy(expiration="2026-12-03T07:59:59Z")
    with pytest.raises(errors.AccessDenied) as exc:
        post_policy.check(p, {"bucket": "b"}, NOW)
    assert exc.value.message == "Invalid according to Policy: Policy expired."
    post_policy.check(policy(expiration="2026-12-03T08:00:01"), {"bucket": "b"}, NOW)  # no zone: UTC


@pytest.mark.parametrize("condition, good, bad", [
    ({"key": "a/b"}, "a/b", "a/bc"),
    (["eq", "$key", "a/b"], "a/b", "A/B"),
    (["starts-with", "$key", "user/"], "user/x", "users/x"),
    (["starts-with", "$key", ""], "anything", None),
])
def test_each_condition_both_sides(condition, good, bad):
    p = policy(condition)
    post_policy.check(p, {"bucket": "b", "key": good}, NOW)
    if bad is not None:
        with pytest.raises(errors.AccessDenied) as exc:
            post_policy.check(p, {"bucket": "b", "key": bad}, NOW)
        assert exc.value.message.startswith("Invalid according to Policy: Policy Condition failed: ")


def test_field_names_are_case_insensitive_values_are_not():
    p = policy(["eq", "$Content-Type", "image/png"], {"X-Amz-Meta-Tag": "Blue"})
    post_policy.check(p, {"bucket": "b", "content-type": "image/png", "x-amz-meta-tag": "Blue"}, NOW)
    with pytest.raises(errors.AccessDenied):
        post_policy.check(p, {"bucket": "b", "content-type": "image/png", "x-amz-meta-tag": "blue"}, NOW)


def test_content_type_starts_with_checks_every_listed_type():
    p = policy(["starts-with", "$Content-Type", "image/"])
    post_policy.check(p, {"bucket": "b", "content-type": "image/png, image/gif"}, NOW)
    with pytest.raises(errors.AccessDenied):
        post_policy.check(p, {"bucket": "b", "content-type": "image/png,text/html"}, NOW)


def test_absent_field_fails_eq_and_a_nonempty_prefix():
    for condition in ({"acl": "public-read"}, ["starts-with", "$acl", "public"]):
        with pytest.raises(errors.AccessDenied):
            post_policy.check(policy(condition), {"bucket": "b"}, NOW)


def test_bucket_condition_uses_the_posted_bucket():
    p = policy({"bucket": "photos"})
    post_policy.check(p, {"bucket": "photos"}, NOW)
    with pytest.raises(errors.AccessDenied):
        post_policy.check(p, {"bucket": "other"}, NOW)


def test_extra_fields_are_denied_except_exempt_ones():
    p = policy(["starts-with", "$key", ""])
    exempt = {"bucket": "b", "key": "k", "policy": "x", "x-amz-signature": "s", "signature": "s",
              "awsaccesskeyid": "a", "x-ignore-anything": "1", "file": ""}
    post_policy.check(p, exempt, NOW)
    with pytest.raises(errors.AccessDenied) as exc:
        post_policy.check(p, dict(exempt, **{"x-amz-meta-a": "1", "acl": "private"}), NOW)
    assert exc.value.message == "Invalid according to Policy: Extra input fields: x-amz-meta-a, acl"


# -- signatures -------------------------------------------------------------------------

def _v4_fields(encoded: str, date="20261203", region="us-east-1", secret=SECRET, access_key="AKIDEXAMPLE"):
    key = ("AWS4" + secret).encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return {"policy": encoded, "x-amz-algorithm": "AWS4-HMAC-SHA256",
            "x-amz-credential": f"{access_key}/{date}/{region}/s3/aws4_request", "x-amz-date": date + "T080000Z",
            "x-amz-signature": hmac.new(key, encoded.encode(), hashlib.sha256).hexdigest()}


def test_v4_signature_both_sides():
    encoded = encode({"expiration": "2026-12-03T09:00:00Z", "conditions": []})
    assert post_policy.verify_v4(_v4_fields(encoded), lookup, "us-east-1") == "AKIDEXAMPLE"
    with pytest.raises(errors.SignatureDoesNotMatch):
        post_policy.verify_v4(_v4_fields(encoded, secret="wrong"), lookup, "us-east-1")
    tampered = dict(_v4_fields(encoded), policy=encoded[:-4] + "AAA=")
    with pytest.raises(errors.SignatureDoesNotMatch):
        post_policy.verify_v4(tampered, lookup, "us-east-1")
    with pytest.raises(errors.InvalidAccessKeyId):
        post_policy.verify_v4(_v4_fields(encoded, access_key="NOBODY"), lookup, "us-east-1")


def test_v4_scope_checks():
    encoded = encode({"expiration": "2026-12-03T09:00:00Z", "conditions": []})
    mismatched_date = dict(_v4_fields(encoded), **{"x-amz-date": "20261204T000000Z"})
    with pytest.raises(errors.AuthorizationQueryParametersError):
        post_policy.verify_v4(mismatched_date, lookup, "us-east-1")
    with pytest.raises(errors.AuthorizationQueryParametersError):
        post_policy.verify_v4(_v4_fields(encoded, region="eu-west-3"), lookup, "us-east-1")
    wrong_service = dict(_v4_fields(encoded), **{"x-amz-credential": "AKIDEXAMPLE/20261203/us-east-1/ec2/aws4_request"})
    with pytest.raises(errors.AuthorizationQueryParametersError):
        post_policy.verify_v4(wrong_service, lookup, "us-east-1")
    with pytest.raises(errors.InvalidArgument):
        post_policy.verify_v4(dict(_v4_fields(encoded), **{"x-amz-algorithm": "AWS4-HMAC-SHA1"}), lookup, "us-east-1")
    with pytest.raises(errors.AccessDenied):  # not an x-amz-date at all
        post_policy.verify_v4(dict(_v4_fields(encoded), **{"x-amz-date": "yesterday"}), lookup, "us-east-1")


def test_v2_signature_both_sides():
    encoded = encode({"expiration": "2026-12-03T09:00:00Z", "conditions": []})
    signature = base64.b64encode(hmac.new(SECRET.encode(), encoded.encode(), hashlib.sha1).digest()).decode()
    fields = {"policy": encoded, "awsaccesskeyid": "AKIDEXAMPLE", "signature": signature}
    assert post_policy.verify_v2(fields, lookup) == "AKIDEXAMPLE"
    with pytest.raises(errors.SignatureDoesNotMatch):
        post_policy.verify_v2(dict(fields, signature=signature[:-2] + "A="), lookup)
    with pytest.raises(errors.InvalidAccessKeyId):
        post_policy.verify_v2(dict(fields, awsaccesskeyid="NOBODY"), lookup)


def test_authenticate_modes():
    assert post_policy.authenticate({"key": "k"}, "b", lookup, "us-east-1", NOW) == (None, None)
    encoded = encode({"expiration": "2026-12-03T09:00:00Z", "conditions": [
        {"bucket": "b"}, ["starts-with", "$key", ""], {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
        {"x-amz-credential": "AKIDEXAMPLE/20261203/us-east-1/s3/aws4_request"}, {"x-amz-date": "20261203T080000Z"}]})
    fields = dict(_v4_fields(encoded), key="k")
    access_key, p = post_policy.authenticate(fields, "b", lookup, "us-east-1", NOW)
    assert access_key == "AKIDEXAMPLE" and len(p.conditions) == 5
    with pytest.raises(errors.AccessDenied):  # the policy names another bucket
        post_policy.authenticate(fields, "c", lookup, "us-east-1", NOW)
    with pytest.raises(errors.AccessDenied):  # expired
        post_policy.authenticate(fields, "b", lookup, "us-east-1", NOW + timedelta(hours=2))
    with pytest.raises(errors.InvalidArgument):  # a signature without a policy
        post_policy.authenticate({k: v for k, v in fields.items() if k != "policy"}, "b", lookup, "us-east-1", NOW)
    with pytest.raises(errors.InvalidArgument):  # a policy without a signature
        post_policy.authenticate({"key": "k", "policy": encoded}, "b", lookup, "us-east-1", NOW)
    with pytest.raises(errors.InvalidArgument):  # both signature kinds
        post_policy.authenticate(dict(fields, signature="x", awsaccesskeyid="AKIDEXAMPLE"), "b", lookup,
                                 "us-east-1", NOW)
