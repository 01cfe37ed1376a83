"""GetObjectAttributes: an object's ETag, checksum, parts, storage class and
size, without its bytes.

It reads one committed version the way HeadObject does (row and part map from
one snapshot, the same READ check, delete-marker errors and SSE-C key check),
so a concurrent overwrite answers wholly the old or wholly the new version.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from .. import errors
from ..metadata.store import ObjectVersion
from . import Caller, Services, encryption, objects

# The names x-amz-object-attributes may list, as AWS spells them.
ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
DEFAULT_MAX_PARTS = 1000


def parse_attribute_names(values: list[str]) -> set[str]:
    """The attributes asked for (the header may repeat, each a comma-separated
    list); none, or a name S3 does not know, is InvalidArgument as AWS answers."""
    names = {name.strip() for value in values for name in value.split(",")} - {""}
    if not names:
        raise errors.InvalidArgument("Invalid attribute name specified.", ArgumentName="x-amz-object-attributes",
                                     ArgumentValue="")
    unknown = sorted(names - set(ATTRIBUTES))
    if unknown:
        raise errors.InvalidArgument("Invalid attribute name specified.", ArgumentName="x-amz-object-attributes",
                                     ArgumentValue=unknown[0])
    return names


@dataclass
class PartsPage:
    """ObjectParts of a multipart object. ``parts`` is None when the object has
    no additional checksum: S3 then lists no parts, only their count."""
    total: int
    marker: int = 0
    max_parts: int = DEFAULT_MAX_PARTS
    truncated: bool = False
    parts: list[tuple[int, int, dict]] | None = None  # (part number, size, {algorithm: checksum})
    next_marker: int | None = None


@dataclass
class ObjectAttributesResult:
    version: ObjectVersion
    checksums: dict = field(default_factory=dict)  # algorithm -> value, as GetObjectAttributes shows it
    checksum_type: str | None = None
    parts: PartsPage | None = None


def get_object_attributes(svc: Services, caller: Caller | None, bucket: str, key: str, *,
                          version_id: str | None = None, customer: encryption.CustomerKey | None = None,
                          marker: int = 0, max_parts: int = DEFAULT_MAX_PARTS) -> ObjectAttributesResult:
    """GetObjectAttributes of the current version (or ``version_id``): permission
    as GetObject (READ on the object), SSE-C objects need their key."""
    version = objects.head_object(svc, caller, bucket, key, part_map=True, version_id=version_id,
                                  customer=customer)
    record = version.record
    result = ObjectAttributesResult(version)
    for algorithm, value in record.checksums.items():
        # A COMPOSITE value is stored (and shown by HeadObject) as "<b64>-<parts>";
        # GetObjectAttributes shows the same value without the suffix, as S3 does.
        base, dash, _ = value.partition("-")
        result.checksums[algorithm] = base
        result.checksum_type = "COMPOSITE" if dash else "FULL_OBJECT"
    if record.parts_count:
        result.parts = _parts_page(record.parts_count, version.parts or [], result.checksums, marker, max_parts)
    return result


def _parts_page(total: int, parts: list[tuple], checksums: dict, marker: int, max_parts: int) -> PartsPage:
    """The page of parts after ``marker``; each part with its checksum of the
    object's algorithm (S3 lists parts only for objects that have one)."""
    page = PartsPage(total=total, marker=marker, max_parts=max_parts)
    if not checksums:
        return page
    algorithms = set(checksums)
    after = [p for p in parts if p[0] > marker]
    chosen = after[:max_parts]
    page.parts = [(p[0], p[2], {a: v for a, v in _part_checksums(p[4]).items() if a in algorithms})
                  for p in chosen]
    page.truncated = len(after) > len(chosen)
    if chosen:
        page.next_marker = chosen[-1][0]
    return page


def _part_checksums(text: str | dict | None) -> dict:
    if not text:
        return {}
    return text if isinstance(text, dict) else json.loads(text)
