"""Object Lock operations: GetObjectLockConfiguration, PutObjectLockConfiguration,
GetObjectRetention, PutObjectRetention, GetObjectLegalHold, PutObjectLegalHold."""
from __future__ import annotations

from ... import errors
from ...service import object_lock
from .. import headers as h
from .. import xml
from ..responses import S3Result
from . import handles
from .objects import _bypass, require_integrity_header


def _document(req, root: str):
    node = xml.parse(req.small_body())
    if xml.local(node.tag) != root:
        raise errors.MalformedXML()
    return node


def _child(node, name: str):
    return next((c for c in node if xml.local(c.tag) == name), None)


@handles("GetObjectLockConfiguration")
def get_object_lock_configuration(svc, req) -> S3Result:
    config = object_lock.get_object_lock_configuration(svc, req.caller, req.bucket)
    inner = [xml.el("ObjectLockEnabled", "Enabled")]
    rule = config.get("rule")
    if rule:
        period = xml.el("Days", rule["days"]) if "days" in rule else xml.el("Years", rule["years"])
        inner.append(f"<Rule><DefaultRetention>{xml.el('Mode', rule['mode'])}{period}</DefaultRetention></Rule>")
    return S3Result(xml=xml.document("ObjectLockConfiguration", inner))


@handles("PutObjectLockConfiguration")
def put_object_lock_configuration(svc, req) -> S3Result:
    require_integrity_header(req, "Put Object Lock Configuration requests")
    root = _document(req, "ObjectLockConfiguration")
    enabled = xml.child_text(root, "ObjectLockEnabled") == "Enabled"
    rule = None
    rule_node = _child(root, "Rule")
    if rule_node is not None:
        retention = _child(rule_node, "DefaultRetention")
        if retention is None:
            raise errors.MalformedXML()
        mode = xml.child_text(retention, "Mode")
        days, years = xml.child_text(retention, "Days"), xml.child_text(retention, "Years")
        if mode not in object_lock.MODES or (days is None) == (years is None):
            raise errors.MalformedXML()
        try:
            period = int(days if days is not None else years)
        except ValueError:
            raise errors.MalformedXML() from None
        if period <= 0:
            raise errors.InvalidArgument("Default retention period must be a positive integer value.",
                                         ArgumentName="Days" if days is not None else "Years",
                                         ArgumentValue=period)
        rule = {"mode": mode, "days" if days is not None else "years": period}
    object_lock.put_object_lock_configuration(svc, req.caller, req.bucket, enabled, rule)
    return S3Result()


@handles("GetObjectRetention")
def get_object_retention(svc, req) -> S3Result:
    mode, until = object_lock.get_object_retention(svc, req.caller, req.bucket, req.key, req.query.get("versionId"))
    return S3Result(xml=xml.document("Retention", [xml.el("Mode", mode),
                                                   xml.el("RetainUntilDate", h.iso_date(until))]))


@handles("PutObjectRetention")
def put_object_retention(svc, req) -> S3Result:
    require_integrity_header(req, "Put Object Retention requests")
    root = _document(req, "Retention")
    mode, date = xml.child_text(root, "Mode"), xml.child_text(root, "RetainUntilDate")
    if (mode is None) != (date is None) or (mode is not None and mode not in object_lock.MODES):
        raise errors.MalformedXML()
    until = h.iso_time(date, "RetainUntilDate") if date is not None else None
    object_lock.put_object_retention(svc, req.caller, req.bucket, req.key, req.query.get("versionId"), mode, until,
                                     _bypass(req))
    return S3Result()


@handles("GetObjectLegalHold")
def get_object_legal_hold(svc, req) -> S3Result:
    on = object_lock.get_object_legal_hold(svc, req.caller, req.bucket, req.key, req.query.get("versionId"))
    return S3Result(xml=xml.document("LegalHold", xml.el("Status", "ON" if on else "OFF")))


@handles("PutObjectLegalHold")
def put_object_legal_hold(svc, req) -> S3Result:
    require_integrity_header(req, "Put Object Legal Hold requests")
    status = xml.child_text(_document(req, "LegalHold"), "Status")
    if status not in ("ON", "OFF"):
        raise errors.MalformedXML()
    object_lock.put_object_legal_hold(svc, req.caller, req.bucket, req.key, req.query.get("versionId"),
                                      status == "ON")
    return S3Result()
