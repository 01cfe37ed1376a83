"""Bucket lifecycle configuration: PutBucketLifecycleConfiguration (and the older
PutBucketLifecycle document), GetBucketLifecycleConfiguration, DeleteBucketLifecycle.

The handler hands over the parsed XML element tree; here it is validated as AWS
validates it and normalised into JSON (stored in ``buckets.lifecycle``), and
rendered back. Which objects a rule applies to, and when, is lifecycle_rules.py;
the pass that applies them is jobs/lifecycle.py.

Normalised rule (JSON):
  {"id": str, "status": "Enabled"|"Disabled",
   "filter": {"shape": "prefix"|"filter"|"and", "prefix": str, "tags": {k: v},
              "gt": int|None, "lt": int|None},
   "expiration": {"days": n} | {"date": "YYYY-MM-DDT00:00:00Z"} | {"marker": true},  (optional)
   "noncurrent": {"days": n, "newer": n|None},                                     (optional)
   "abort_days": n}                                                                 (optional)
"shape" only says how the rule was written (legacy top-level Prefix, a Filter with
one condition, a Filter with And), so Get answers the document that was put.

Transition and NoncurrentVersionTransition are refused with 400 InvalidStorageClass:
BleepStore has one storage class (STANDARD), and S3 refuses a transition to a class
the bucket cannot use.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from xml.sax.saxutils import escape

from .. import errors
from . import Caller, Services
from .buckets import require_bucket, require_owner

MAX_RULES = 1000
MAX_ID = 255
MAX_NEWER_NONCURRENT = 100


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(node) -> list:
    return [c for c in node]


def _named(node, name: str) -> list:
    return [c for c in node if _local(c.tag) == name]


def _one(node, name: str):
    """The single child ``name`` (None if absent); twice is a malformed document."""
    found = _named(node, name)
    if len(found) > 1:
        raise errors.MalformedXML()
    return found[0] if found else None


def _text(node, name: str) -> str | None:
    child = _one(node, name)
    return None if child is None else (child.text or "").strip()


def _positive(value: str, message: str, argument: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise errors.MalformedXML() from None
    if number <= 0:
        raise errors.InvalidArgument(message, ArgumentName=argument, ArgumentValue=value)
    return number


def _size(value: str, argument: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise errors.MalformedXML() from None
    if number < 0:
        raise errors.InvalidArgument(f"'{argument}' should be a non-negative integer", ArgumentName=argument,
                                     ArgumentValue=value)
    return number


def _tag(node) -> tuple[str, str]:
    key, value = _text(node, "Key"), _text(node, "Value")
    if key is None or value is None:
        raise errors.MalformedXML()
    return key, value


def _filter(rule) -> dict:
    """The rule's filter: the old top-level Prefix, or Filter with at most one of
    Prefix, Tag, And, ObjectSizeGreaterThan, ObjectSizeLessThan."""
    prefix, node = _one(rule, "Prefix"), _one(rule, "Filter")
    if (prefix is None) == (node is None):
        raise errors.MalformedXML()  # exactly one of the two ways to say which objects
    out = {"shape": "prefix", "prefix": "", "tags": {}, "gt": None, "lt": None}
    if prefix is not None:
        out["prefix"] = prefix.text or ""
        return out
    out["shape"] = "filter"
    conditions = _children(node)
    if len(conditions) > 1:
        raise errors.MalformedXML()
    if not conditions:
        return out
    cond = conditions[0]
    name = _local(cond.tag)
    if name == "And":
        out["shape"] = "and"
        cond_nodes = _children(cond)
    elif name in ("Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        cond_nodes = [cond]
    else:
        raise errors.MalformedXML()
    for c in cond_nodes:
        kind = _local(c.tag)
        if kind == "Prefix":
            out["prefix"], out["prefix_given"] = c.text or "", True
        elif kind == "Tag":
            key, value = _tag(c)
            if key in out["tags"]:
                raise errors.InvalidArgument("Duplicate Tag Keys are not allowed.", ArgumentName="Filter")
            out["tags"][key] = value
        elif kind == "ObjectSizeGreaterThan":
            out["gt"] = _size(c.text or "", kind)
        elif kind == "ObjectSizeLessThan":
            out["lt"] = _size(c.text or "", kind)
        else:
            raise errors.MalformedXML()
    if out["gt"] is not None and out["lt"] is not None and out["gt"] >= out["lt"]:
        raise errors.InvalidArgument("ObjectSizeGreaterThan must be less than ObjectSizeLessThan",
                                     ArgumentName="Filter")
    return out


def _midnight_date(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise errors.InvalidArgument("Invalid date: must be in ISO 8601 format", ArgumentName="Date",
                                     ArgumentValue=value) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    parsed = parsed.astimezone(timezone.utc)
    if (parsed.hour, parsed.minute, parsed.second, parsed.microsecond) != (0, 0, 0, 0):
        raise errors.InvalidArgument("'Date' must be at midnight GMT", ArgumentName="Date", ArgumentValue=value)
    return parsed.strftime("%Y-%m-%dT00:00:00Z")


def _expiration(node) -> dict:
    days, date, marker = _text(node, "Days"), _text(node, "Date"), _text(node, "ExpiredObjectDeleteMarker")
    if days is not None and date is not None:
        raise errors.InvalidArgument("Expiration can only have one of Days or Date", ArgumentName="Expiration")
    if marker is not None:
        if marker not in ("true", "false"):
            raise errors.MalformedXML()
        if days is not None or date is not None:
            raise errors.InvalidArgument("ExpiredObjectDeleteMarker cannot be specified with Days or Date in a "
                                         "Lifecycle Expiration Policy.", ArgumentName="ExpiredObjectDeleteMarker")
    if days is not None:
        return {"days": _positive(days, "'Days' for Expiration action must be a positive integer", "Days")}
    if date is not None:
        return {"date": _midnight_date(date)}
    if marker is None:
        raise errors.MalformedXML()
    return {"marker": marker == "true"}


def _noncurrent(node) -> dict:
    days, newer = _text(node, "NoncurrentDays"), _text(node, "NewerNoncurrentVersions")
    if days is None:
        raise errors.MalformedXML()
    out = {"days": _positive(days, "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive "
                                   "integer", "NoncurrentDays"), "newer": None}
    if newer is not None:
        count = _positive(newer, "'NewerNoncurrentVersions' must be a positive integer",
                          "NewerNoncurrentVersions")
        if count > MAX_NEWER_NONCURRENT:
            raise errors.InvalidArgument(f"'NewerNoncurrentVersions' must be less than or equal to "
                                         f"{MAX_NEWER_NONCURRENT}", ArgumentName="NewerNoncurrentVersions",
                                         ArgumentValue=newer)
        out["newer"] = count
    return out


_KNOWN = {"ID", "Prefix", "Filter", "Status", "Expiration", "NoncurrentVersionExpiration",
          "AbortIncompleteMultipartUpload", "Transition", "NoncurrentVersionTransition"}


def _rule(node) -> dict:
    for child in node:
        if _local(child.tag) not in _KNOWN:
            raise errors.MalformedXML()
    for name in ("Transition", "NoncurrentVersionTransition"):
        for transition in _named(node, name):
            storage_class = _text(transition, "StorageClass") or ""
            raise errors.InvalidStorageClass(
                f"The storage class you specified is not valid: {storage_class or '(none)'}. This server has one "
                f"storage class (STANDARD) and does not support {name} rules.", StorageClassRequested=storage_class)
    rule_id = _text(node, "ID")
    if rule_id is not None and len(rule_id) > MAX_ID:
        raise errors.InvalidArgument("ID length should not exceed allowed limit of 255", ArgumentName="ID",
                                     ArgumentValue=rule_id)
    status = _text(node, "Status")
    if status not in ("Enabled", "Disabled"):
        raise errors.MalformedXML()
    rule: dict = {"id": rule_id or _generated_id(), "status": status, "filter": _filter(node)}
    expiration = _one(node, "Expiration")
    if expiration is not None:
        rule["expiration"] = _expiration(expiration)
    noncurrent = _one(node, "NoncurrentVersionExpiration")
    if noncurrent is not None:
        rule["noncurrent"] = _noncurrent(noncurrent)
    abort = _one(node, "AbortIncompleteMultipartUpload")
    if abort is not None:
        days = _text(abort, "DaysAfterInitiation")
        if days is None:
            raise errors.MalformedXML()
        rule["abort_days"] = _positive(days, "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action "
                                             "must be a positive integer", "DaysAfterInitiation")
    if not any(k in rule for k in ("expiration", "noncurrent", "abort_days")):
        raise errors.InvalidRequest("At least one action needs to be specified in a rule")
    tags = rule["filter"]["tags"]
    if tags and "abort_days" in rule:
        raise errors.InvalidArgument("AbortIncompleteMultipartUpload cannot be specified with Tags.",
                                     ArgumentName="Filter")
    if tags and rule.get("expiration", {}).get("marker") is not None:
        raise errors.InvalidArgument("ExpiredObjectDeleteMarker cannot be specified with Tags.",
                                     ArgumentName="Filter")
    return rule


def _generated_id() -> str:
    """S3 makes an id for a rule without one: a random string of letters and digits."""
    return uuid.uuid4().hex + uuid.uuid4().hex[:16]


def parse_configuration(root) -> list[dict]:
    """A LifecycleConfiguration element tree -> the normalised rules (or the S3 error)."""
    if _local(root.tag) != "LifecycleConfiguration":
        raise errors.MalformedXML()
    for child in root:
        if _local(child.tag) != "Rule":
            raise errors.MalformedXML()
    nodes = _named(root, "Rule")
    if not nodes or len(nodes) > MAX_RULES:
        raise errors.MalformedXML()
    rules = [_rule(node) for node in nodes]
    seen: set[str] = set()
    for rule in rules:
        if rule["id"] in seen:
            raise errors.InvalidArgument("RuleId must be unique. Found same ID for more than one rule",
                                         ArgumentName="ID", ArgumentValue=rule["id"])
        seen.add(rule["id"])
    return rules


def rules_of(lifecycle_json: str | None) -> list[dict]:
    """The stored rules of a bucket (``BucketRecord.lifecycle``); [] for none."""
    return json.loads(lifecycle_json)["rules"] if lifecycle_json else []


# -- rendering -----------------------------------------------------------------

def _el(tag: str, value) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


def _render_filter(f: dict) -> str:
    if f["shape"] == "prefix":
        return _el("Prefix", f["prefix"])
    parts = [_el("Prefix", f["prefix"])] if f.get("prefix_given") else []
    for key, value in f["tags"].items():
        parts.append(f"<Tag>{_el('Key', key)}{_el('Value', value)}</Tag>")
    if f["gt"] is not None:
        parts.append(_el("ObjectSizeGreaterThan", f["gt"]))
    if f["lt"] is not None:
        parts.append(_el("ObjectSizeLessThan", f["lt"]))
    inner = "".join(parts)
    if f["shape"] == "and":
        inner = f"<And>{inner}</And>"
    return f"<Filter>{inner}</Filter>"


def render_rule(rule: dict) -> str:
    parts = [_el("ID", rule["id"]), _render_filter(rule["filter"]), _el("Status", rule["status"])]
    expiration = rule.get("expiration")
    if expiration is not None:
        if "days" in expiration:
            inner = _el("Days", expiration["days"])
        elif "date" in expiration:
            inner = _el("Date", expiration["date"].replace("Z", ".000Z"))
        else:
            inner = _el("ExpiredObjectDeleteMarker", "true" if expiration["marker"] else "false")
        parts.append(f"<Expiration>{inner}</Expiration>")
    noncurrent = rule.get("noncurrent")
    if noncurrent is not None:
        inner = _el("NoncurrentDays", noncurrent["days"])
        if noncurrent["newer"] is not None:
            inner += _el("NewerNoncurrentVersions", noncurrent["newer"])
        parts.append(f"<NoncurrentVersionExpiration>{inner}</NoncurrentVersionExpiration>")
    if "abort_days" in rule:
        parts.append("<AbortIncompleteMultipartUpload>" + _el("DaysAfterInitiation", rule["abort_days"])
                     + "</AbortIncompleteMultipartUpload>")
    return "<Rule>" + "".join(parts) + "</Rule>"


# -- the operations ----------------------------------------------------------------

def put_bucket_lifecycle_configuration(svc: Services, caller: Caller | None, bucket: str, root) -> None:
    """PutBucketLifecycleConfiguration: replaces the bucket's rules (owner only)."""
    require_owner(require_bucket(svc, bucket), caller)
    rules = parse_configuration(root)
    svc.meta.set_bucket_lifecycle(bucket, json.dumps({"rules": rules}, separators=(",", ":"), ensure_ascii=False))


def get_bucket_lifecycle_configuration(svc: Services, caller: Caller | None, bucket: str) -> list[dict]:
    """GetBucketLifecycleConfiguration: the rules, or NoSuchLifecycleConfiguration."""
    record = require_bucket(svc, bucket)
    require_owner(record, caller)
    rules = rules_of(record.lifecycle)
    if not rules:
        raise errors.NoSuchLifecycleConfiguration(BucketName=bucket)
    return rules


def delete_bucket_lifecycle(svc: Services, caller: Caller | None, bucket: str) -> None:
    """DeleteBucketLifecycle: no rules any more (204 whether there were any or not)."""
    require_owner(require_bucket(svc, bucket), caller)
    svc.meta.set_bucket_lifecycle(bucket, None)
