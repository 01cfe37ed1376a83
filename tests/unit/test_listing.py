"""Unit tests for bleepstore_app.service.listing against a real SQLite MetadataStore.

The oracle is a brute-force model of S3 listing (AWS S3 API Reference,
ListObjects / ListObjectsV2): keys in UTF-8 byte order, the prefix filter, keys
that contain the delimiter after the prefix rolled up into one CommonPrefix each,
max-keys counting keys and common prefixes together, and marker / start-after
exclusive. A common prefix that sorts at or before the marker is not reported
again (a marker inside a common prefix skips the rest of that prefix), which is
how S3 continues from a NextMarker that is itself a common prefix.
"""
from __future__ import annotations

import functools
import random
import uuid

import pytest

from bleepstore_app import errors
from bleepstore_app.config import load_settings
from bleepstore_app.metadata.engine import Database, make_engine
from bleepstore_app.metadata.records import ObjectRecord, now_us
from bleepstore_app.metadata.store import MetadataStore
from bleepstore_app.recovery import recover
from bleepstore_app.service import Caller, Services
from bleepstore_app.service.buckets import create_bucket
from bleepstore_app.service.listing import MAX_KEYS, list_objects, parse_max_keys, successor
from bleepstore_app.storage import make_storage

# --- successor ------------------------------------------------------------------------


@pytest.mark.parametrize("prefix, expected", [
    ("a", "b"),
    ("abc", "abd"),
    ("a/", "a0"),
    ("z", "{"),
    ("~", "\x7f"),
    ("\x7f", "\x80"),
    ("é", "ê"),
    ("日", "旦"),
    ("\ud7ff", "\ue000"),        # skips the surrogate block
    ("a\U0010ffff", "b"),        # the last code point carries
    ("\U0010ffff", None),
    ("\U0010ffff\U0010ffff", None),
    ("", None),
])
def test_successor_values(prefix, expected):
    assert successor(prefix) == expected


@pytest.mark.parametrize("prefix", ["a", "a/", "photos/2024/", "é", "日本", "\U0001f600", "\ud7ff", "x\U0010ffff"])
def test_successor_bounds_all_extensions(prefix):
    nxt = successor(prefix)
    assert nxt is not None and nxt > prefix
    assert not nxt.startswith(prefix)
    for tail in ["", "\x00", "a", "\U0010ffff", "\U0010ffff" * 3, "\uffff"]:
        s = prefix + tail
        assert s < nxt
        assert s.encode() < nxt.encode()  # byte order agrees


# --- parse_max_keys ---------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (None, 1000), ("", 1000), ("0", 0), ("1", 1), ("999", 999), ("1000", 1000), ("1001", 1000),
    ("2147483647", 1000), ("007", 7),
])
def test_parse_max_keys_values(value, expected):
    assert parse_max_keys(value) == expected


@pytest.mark.parametrize("value", ["abc", "1.5", "1e3", "0x10", "ten"])
def test_parse_max_keys_not_integer(value):
    with pytest.raises(errors.InvalidArgument) as exc:
        parse_max_keys(value)
    assert exc.value.message == "Provided max-keys not an integer or within integer range"
    assert exc.value.fields == {"ArgumentName": "max-keys", "ArgumentValue": value}


@pytest.mark.parametrize("value", ["-1", "-1000"])
def test_parse_max_keys_negative(value):
    with pytest.raises(errors.InvalidArgument) as exc:
        parse_max_keys(value)
    assert exc.value.message == "Argument maxKeys must be an integer between 0 and 2147483647"
    assert exc.value.fields["ArgumentName"] == "maxKeys"


@pytest.mark.parametrize("value", ["2147483648", "99999999999999999999"])
def test_parse_max_keys_out_of_integer_range(value):
    with pytest.raises(errors.InvalidArgument):
        parse_max_keys(value)


# --- a real metadata store -----------------------------------------------------------

class Store:
    def __init__(self, tmp_path) -> None:
        self.settings = load_settings(environ={}, overrides={
            "metadata.sqlite.path": str(tmp_path / "m.db"),
            "metadata.sqlite.synchronous": "NORMAL",
            "storage.local.root_dir": str(tmp_path / "o"),
            "storage.local.fsync": False,
        })
        recover(self.settings)
        self.db = Database(make_engine(self.settings))
        self.meta = MetadataStore(self.db)
        self.svc = Services(self.settings, self.meta, make_storage(self.settings))
        cred = self.settings.credentials[0]
        self.caller = Caller(cred.access_key, cred.owner_id, cred.display_name)

    def bucket(self, name: str, keys) -> list[str]:
        create_bucket(self.svc, self.caller, name, None)
        keys = list(keys)
        for i, key in enumerate(keys):
            data = key.encode()[:8]
            self.meta.put_object(ObjectRecord(
                bucket=name, key=key, size=len(data), etag=f"{i:032x}", last_modified=now_us(),
                owner_id=self.caller.owner_id, owner_display_name=self.caller.display_name,
                data_location=uuid.uuid4().hex, data_inline=True), inline=data)
        return keys

    def list(self, bucket, prefix="", delimiter="", after=None, max_keys=1000):
        return list_objects(self.svc, self.caller, bucket, prefix, delimiter, after, max_keys)


def _utf8(s: str) -> bytes:
    return s.encode("utf-8")


def model(keys, prefix="", delimiter="", after=None, max_keys=1000):
    """Brute-force S3 listing: (keys, common_prefixes, is_truncated, last_returned)."""
    entries = _entries(tuple(keys), prefix, delimiter)
    if after is not None:
        entries = [e for e in entries if _utf8(e[0]) > _utf8(after)]
    page = entries[:max_keys]
    return ([n for n, p in page if not p], [n for n, p in page if p], len(entries) > max_keys,
            page[-1][0] if page else None)


@functools.lru_cache(maxsize=None)
def _entries(keys: tuple[str, ...], prefix: str, delimiter: str) -> list[tuple[str, bool]]:
    """Every key or common prefix under ``prefix``, in UTF-8 byte order, each once."""
    entries: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for key in sorted(keys, key=_utf8):
        if not key.startswith(prefix):
            continue
        if delimiter:
            pos = key.find(delimiter, len(prefix))
            if pos >= 0:
                cp = key[:pos + len(delimiter)]
                if cp not in seen:
                    seen.add(cp)
                    entries.append((cp, True))
                continue
        entries.append((key, False))
    return entries


def observed(page):
    return ([o.key for o in page.objects], page.common_prefixes, page.is_truncated, page.last_returned)


# Characters chosen to stress ordering: ASCII below and above '/', uppercase, '~',
# DEL, Latin-1, BMP, astral, U+FFFF-adjacent and the largest code point.
ALPHABET = ["a", "a", "b", "b", "/", "/", "-", ".", "~", "A", "Z", " ", "+", "=", "0", "9", "\x7f", "é", "ß",
            "日", "本", "\U0001f600", "\uffef", "\U0010ffff", "%"]


def make_keys(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    keys = {"a", "a/", "a/b", "a/b/c", "a/c", "a//b", "ab", "a-b", "a.b", "a~", "A", "A/b", "b", "é/x", "日本/語",
            "x~y~z", "x~y", "\U0001f600/1", "aaa", "a/b/", "p/q/r/s", "p/q/r/t", "p/q/u", "p/v"}
    while len(keys) < n:
        keys.add("".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 9))))
    return sorted(keys)


KEYS = make_keys(2500, seed=20240301)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(tmp_path_factory.mktemp("listing"))
    s.bucket("big", KEYS)
    return s


SCENARIOS = [
    ("", ""),
    ("", "/"),
    ("a", "/"),
    ("a/", "/"),
    ("a/b", "/"),
    ("", "~"),
    ("", "a"),
    ("", "b"),
    ("a", "a"),
    ("", "//"),
    ("", "/b"),
    ("", "é"),
    ("", "日"),
    ("", "\U0001f600"),
    ("", "\U0010ffff"),
    ("b", ""),
    ("A", ""),
    ("é", "/"),
    ("\U0001f600", ""),
    ("\U0010ffff", "/"),
    ("zzz-none", "/"),
    ("", "ab/"),
    ("p/", "/"),
]


@pytest.mark.parametrize("prefix, delimiter", SCENARIOS)
def test_list_objects_first_page_matches_model(store, prefix, delimiter):
    for max_keys in (1, 3, 1000):
        got = observed(store.list("big", prefix, delimiter, None, max_keys))
        assert got == model(KEYS, prefix, delimiter, None, max_keys), (prefix, delimiter, max_keys)


def paginate(store, bucket, prefix, delimiter, max_keys, start_after=None):
    keys: list[str] = []
    prefixes: list[str] = []
    after = start_after
    pages = 0
    while True:
        page = store.list(bucket, prefix, delimiter, after, max_keys)
        expected = model(store_keys(bucket), prefix, delimiter, after, max_keys)
        assert observed(page) == expected, (prefix, delimiter, after, max_keys)
        keys += [o.key for o in page.objects]
        prefixes += page.common_prefixes
        pages += 1
        if not page.is_truncated:
            return keys, prefixes, pages
        assert page.last_returned is not None
        after = page.last_returned


def store_keys(bucket):
    return KEYS if bucket == "big" else SMALL_KEYS


@pytest.mark.parametrize("prefix, delimiter", SCENARIOS)
@pytest.mark.parametrize("max_keys", [7, 250])
def test_list_objects_pagination_matches_model(store, prefix, delimiter, max_keys):
    keys, prefixes, pages = paginate(store, "big", prefix, delimiter, max_keys)
    all_keys, all_prefixes, _, _ = model(KEYS, prefix, delimiter, None, 10**9)
    assert keys == all_keys
    assert prefixes == all_prefixes
    assert len(set(keys)) == len(keys) and len(set(prefixes)) == len(prefixes)
    total = len(all_keys) + len(all_prefixes)
    assert pages == max(1, -(-total // max_keys))


def test_list_objects_pagination_one_at_a_time_with_delimiter(store):
    keys, prefixes, pages = paginate(store, "big", "", "/", 1)
    all_keys, all_prefixes, _, _ = model(KEYS, "", "/", None, 10**9)
    assert (keys, prefixes) == (all_keys, all_prefixes)
    assert pages == len(all_keys) + len(all_prefixes)


def test_list_objects_pagination_no_delimiter_full_scan(store):
    keys, prefixes, pages = paginate(store, "big", "", "", 1000)
    assert keys == sorted(KEYS, key=_utf8)
    assert prefixes == []
    assert pages == 3


def test_list_objects_order_is_utf8_byte_order(store):
    page = store.list("big", "", "", None, 1000)
    got = [o.key for o in page.objects]
    assert got == sorted(got, key=_utf8)
    assert "\U0010ffff" in "".join(KEYS)


def test_list_objects_markers_match_model(store):
    rng = random.Random(7)
    markers = rng.sample(KEYS, 40) + ["", "a", "a/", "a/b", "a/b/", "a/bz", "a0", "a\x00", "p/q/r/s", "p/q", "p/q/",
                                      "zzzz", "\U0010ffff" * 3, "A/", "0", "~", "é", "日本/"]
    markers += ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 5))) for _ in range(40)]
    for marker in markers:
        for prefix, delimiter in (("", ""), ("", "/"), ("a/", "/"), ("a", "/"), ("", "~"), ("p/", "/"), ("", "//")):
            for max_keys in (1, 5, 40):
                got = observed(store.list("big", prefix, delimiter, marker, max_keys))
                assert got == model(KEYS, prefix, delimiter, marker, max_keys), (marker, prefix, delimiter, max_keys)


def test_list_objects_start_after_pagination(store):
    keys, prefixes, _ = paginate(store, "big", "", "/", 13, start_after="a/b")
    all_keys, all_prefixes, _, _ = model(KEYS, "", "/", "a/b", 10**9)
    assert (keys, prefixes) == (all_keys, all_prefixes)


# --- small, hand-checked buckets ------------------------------------------------------

SMALL_KEYS = ["a", "a/1", "a/2", "a/3/x", "a/b", "ab", "b", "b/1", "c~1", "c~2", "é", "日/1"]


@pytest.fixture(scope="module")
def small(store):
    store.bucket("small", SMALL_KEYS)
    return store


def test_list_objects_small_no_delimiter(small):
    page = small.list("small")
    assert [o.key for o in page.objects] == SMALL_KEYS
    assert page.common_prefixes == []
    assert page.is_truncated is False
    assert page.last_returned == "日/1"


def test_list_objects_small_delimiter(small):
    page = small.list("small", delimiter="/")
    assert [o.key for o in page.objects] == ["a", "ab", "b", "c~1", "c~2", "é"]
    assert page.common_prefixes == ["a/", "b/", "日/"]


def test_list_objects_small_prefix_and_delimiter(small):
    page = small.list("small", prefix="a/", delimiter="/")
    assert [o.key for o in page.objects] == ["a/1", "a/2", "a/b"]
    assert page.common_prefixes == ["a/3/"]


def test_list_objects_small_tilde_delimiter(small):
    page = small.list("small", delimiter="~")
    assert page.common_prefixes == ["c~"]
    assert "c~1" not in [o.key for o in page.objects]


def test_list_objects_small_multichar_delimiter(small):
    page = small.list("small", delimiter="/1")
    assert page.common_prefixes == ["a/1", "b/1", "日/1"]
    assert [o.key for o in page.objects] == ["a", "a/2", "a/3/x", "a/b", "ab", "b", "c~1", "c~2", "é"]


def test_list_objects_small_max_keys_counts_prefixes(small):
    page = small.list("small", delimiter="/", max_keys=2)
    assert [o.key for o in page.objects] == ["a"]
    assert page.common_prefixes == ["a/"]
    assert page.is_truncated is True
    assert page.last_returned == "a/"
    nxt = small.list("small", delimiter="/", after="a/", max_keys=2)
    assert [o.key for o in nxt.objects] == ["ab", "b"]
    assert nxt.common_prefixes == []
    assert nxt.last_returned == "b"


def test_list_objects_small_exact_fit_not_truncated(small):
    page = small.list("small", max_keys=len(SMALL_KEYS))
    assert page.is_truncated is False
    page = small.list("small", max_keys=len(SMALL_KEYS) - 1)
    assert page.is_truncated is True
    assert page.last_returned == "é"


def test_list_objects_small_marker_inside_common_prefix(small):
    page = small.list("small", delimiter="/", after="a/2")
    assert page.common_prefixes == ["b/", "日/"]
    assert [o.key for o in page.objects] == ["ab", "b", "c~1", "c~2", "é"]


def test_list_objects_small_marker_before_prefix(small):
    page = small.list("small", prefix="b", after="a")
    assert [o.key for o in page.objects] == ["b", "b/1"]


def test_list_objects_small_marker_after_prefix_range(small):
    page = small.list("small", prefix="a", after="b")
    assert page.objects == [] and page.common_prefixes == [] and page.is_truncated is False


def test_list_objects_small_max_keys_zero(small):
    page = small.list("small", max_keys=0)
    assert page.objects == [] and page.common_prefixes == []
    assert page.is_truncated is False
    assert page.last_returned is None


def test_list_objects_small_listed_object_fields(small):
    page = small.list("small", prefix="ab")
    (obj,) = page.objects
    assert obj.key == "ab"
    assert obj.size == 2
    assert obj.etag == f"{SMALL_KEYS.index('ab'):032x}"
    assert obj.storage_class == "STANDARD"
    assert obj.owner_id == small.caller.owner_id


def test_list_objects_missing_bucket(store):
    with pytest.raises(errors.NoSuchBucket) as exc:
        store.list("no-such-bucket")
    assert exc.value.fields == {"BucketName": "no-such-bucket"}


def test_list_objects_other_owner_denied(small):
    with pytest.raises(errors.AccessDenied):
        list_objects(small.svc, Caller("x", "someone-else", "x"), "small", "", "", None, 10)


def test_list_objects_anonymous_denied(small):
    with pytest.raises(errors.AccessDenied):
        list_objects(small.svc, None, "small", "", "", None, 10)


def test_max_keys_constant():
    assert MAX_KEYS == 1000


def test_list_objects_overwrite_keeps_single_row(tmp_path):
    s = Store(tmp_path)
    s.bucket("over", ["k", "k", "k2"])
    page = s.list("over")
    assert [o.key for o in page.objects] == ["k", "k2"]
    assert page.objects[0].etag == f"{1:032x}"


class RowCounter:
    """Wraps MetadataStore.list_objects to count the queries and rows a listing reads."""

    def __init__(self, meta) -> None:
        self.meta, self.queries, self.rows = meta, 0, 0

    def __getattr__(self, name):
        return getattr(self.meta, name)

    def list_objects(self, *args):
        rows = self.meta.list_objects(*args)
        self.queries += 1
        self.rows += len(rows)
        return rows


def test_list_objects_big_prefix_costs_few_rows(tmp_path):
    s = Store(tmp_path)
    keys = s.bucket("fat", ["a"] + [f"big/{i:05}" for i in range(3000)] + ["c"])
    counter = RowCounter(s.meta)
    svc = Services(s.settings, counter, s.svc.storage)
    page = list_objects(svc, s.caller, "fat", "", "/", None, 1000)
    assert ([o.key for o in page.objects], page.common_prefixes) == (["a", "c"], ["big/"])
    assert counter.queries == 2
    assert counter.rows <= 1000 + 2
    assert len(keys) == 3002


def test_list_objects_many_prefixes_reads_each_row_at_most_once(tmp_path):
    s = Store(tmp_path)
    keys = s.bucket("wide", [f"p{i:03}/k{j}" for i in range(300) for j in range(3)])
    counter = RowCounter(s.meta)
    svc = Services(s.settings, counter, s.svc.storage)
    page = list_objects(svc, s.caller, "wide", "", "/", None, 1000)
    assert page.common_prefixes == [f"p{i:03}/" for i in range(300)]
    assert page.is_truncated is False
    assert counter.rows <= len(keys)
