"""Unit tests: ListBuckets paging in service/buckets.py against a real SQLite
MetadataStore (buckets in several regions and of two owners, which a single
test server cannot make), checked against a brute-force model; and the pure
parts of service/attributes.py (attribute names, the ObjectParts page)."""
from __future__ import annotations

import itertools
import json

import pytest

from bleepstore_app import errors
from bleepstore_app.config import load_settings
from bleepstore_app.metadata.engine import Database, make_engine
from bleepstore_app.metadata.records import BucketRecord, now_us
from bleepstore_app.metadata.store import MetadataStore
from bleepstore_app.recovery import recover
from bleepstore_app.service import Caller, Services
from bleepstore_app.service.attributes import _parts_page, parse_attribute_names
from bleepstore_app.service.buckets import list_buckets
from bleepstore_app.storage import make_storage

REGIONS = ("us-east-1", "eu-west-1", "ap-south-1")
NAMES = sorted({"a", "a-b", "a.b", "a0", "ab", "abc", "abd", "b", "b-1", "b-2", "ba", "z-9", "zz"}
               | {f"m{i:02d}" for i in range(20)})


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("buckets")
    settings = load_settings(environ={}, overrides={
        "metadata.sqlite.path": str(tmp / "m.db"), "metadata.sqlite.synchronous": "NORMAL",
        "storage.local.root_dir": str(tmp / "o"), "storage.local.fsync": False})
    recover(settings)
    meta = MetadataStore(Database(make_engine(settings)))
    for i, name in enumerate(NAMES):
        owner = "owner-a" if i % 5 else "owner-b"
        meta.create_bucket(BucketRecord(name=name, owner_id=owner, owner_display_name=owner,
                                        region=REGIONS[i % 3], created_at=now_us()))
    return Services(settings, meta, make_storage(settings))


def _model(owner, prefix, region, after, limit):
    mine = [(n, REGIONS[i % 3]) for i, n in enumerate(NAMES) if (("owner-a" if i % 5 else "owner-b") == owner)]
    found = [n for n, r in mine if n.startswith(prefix) and n > after and region in (None, r)]
    return (found, False) if limit is None or len(found) <= limit else (found[:limit], True)


@pytest.mark.parametrize("owner", ["owner-a", "owner-b", "nobody"])
def test_list_buckets_matches_model(svc, owner):
    caller = Caller("k", owner, owner)
    for prefix, region, after, limit in itertools.product(
            ["", "a", "a-", "ab", "b-", "m1", "zz", "zzz", "A"], [None, *REGIONS, "xx-none-1"],
            ["", "a", "a0", "m05", "zz"], [None, 1, 2, 7, 1000]):
        page, more = list_buckets(svc, caller, prefix=prefix, region=region, after=after, limit=limit)
        assert ([b.name for b in page], more) == _model(owner, prefix, region, after, limit), \
            (prefix, region, after, limit)


def test_list_buckets_paged_through_equals_all(svc):
    caller = Caller("k", "owner-a", "owner-a")
    everything, _ = list_buckets(svc, caller)
    for limit in (1, 3, 7, len(everything)):
        seen, after = [], ""
        while True:
            page, more = list_buckets(svc, caller, after=after, limit=limit)
            seen += [b.name for b in page]
            if not more:
                break
            after = page[-1].name
        assert seen == [b.name for b in everything]


def test_list_buckets_nul_matches_nothing(svc):
    assert list_buckets(svc, Caller("k", "owner-a", "owner-a"), prefix="a\x00") == ([], False)


# -- GetObjectAttributes ------------------------------------------------------------------------

@pytest.mark.parametrize("values, expected", [
    (["ETag"], {"ETag"}),
    (["ETag,ObjectSize"], {"ETag", "ObjectSize"}),
    ([" Checksum , ObjectParts", "StorageClass"], {"Checksum", "ObjectParts", "StorageClass"}),
    (["ETag,,ETag"], {"ETag"}),
])
def test_attribute_names(values, expected):
    assert parse_attribute_names(values) == expected


@pytest.mark.parametrize("values", [[], [""], [" , "], ["etag"], ["ETag,Size"], ["ObjectParts", "Tags"]])
def test_bad_attribute_names(values):
    with pytest.raises(errors.InvalidArgument):
        parse_attribute_names(values)


def _parts(n):
    """Part-map tuples: (number, offset, size, etag, checksums JSON, location)."""
    return [(i, (i - 1) * 10, 10 + i, "e", json.dumps({"CRC32": f"c{i}", "CRC64NVME": "x"}), "loc")
            for i in range(1, n + 1)]


def test_parts_page_without_checksum_lists_no_parts():
    page = _parts_page(3, _parts(3), {}, 0, 1000)
    assert page.parts is None and page.total == 3


@pytest.mark.parametrize("marker, max_parts, numbers, truncated, next_marker", [
    (0, 1000, [1, 2, 3, 4, 5], False, 5),
    (0, 2, [1, 2], True, 2),
    (2, 2, [3, 4], True, 4),
    (4, 2, [5], False, 5),
    (5, 2, [], False, None),
    (9, 2, [], False, None),
    (0, 0, [], True, None),
])
def test_parts_page(marker, max_parts, numbers, truncated, next_marker):
    page = _parts_page(5, _parts(5), {"CRC32": "whole"}, marker, max_parts)
    assert [p[0] for p in page.parts] == numbers
    assert (page.truncated, page.next_marker, page.marker, page.max_parts) == \
        (truncated, next_marker, marker, max_parts)
    # Only the object's algorithm, with each part's size.
    assert all(p[2] == {"CRC32": f"c{p[0]}"} and p[1] == 10 + p[0] for p in page.parts)


def test_parts_page_from_before_part_checksums_were_kept():
    parts = [(1, 0, 5, "e", None, "loc"), (2, 5, 6, "e", None, "loc")]
    page = _parts_page(2, parts, {"SHA256": "whole"}, 0, 1000)
    assert page.parts == [(1, 5, {}), (2, 6, {})]
