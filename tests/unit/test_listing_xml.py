"""The listing handlers' fast paths against the plain per-value forms they stand for.

``key_texts`` renders a page's keys as their <Key> text with one check over the
whole page; each key must come out exactly as ``xml.text(enc(key))`` (the
per-key form: URL-encoded with S3's safe set for encoding-type=url, then
XML-escaped). ``xml.iso8601`` must equal the ISO 8601 form S3 writes
(milliseconds, Z), whatever the microseconds.
"""
from __future__ import annotations

import datetime as dt
import random
from urllib.parse import quote

import pytest

from bleepstore_app.s3 import xml
from bleepstore_app.s3.handlers.listing import _plain, _url, key_texts

PLAIN = ["a", "key-0000001", "dir/sub/file.txt", "x_y.z~w", "A-Z0-9"]
SPECIAL = ["a&b", "a<b", "a>b", 'a"b', "a\rb", "a b", "a+b", "a%b", "é", "中/文", "😀", "a\tb", "a\nb",
           "a'b", "a?b#c", "&amp;", ""]


def reference(keys, enc):
    return [xml.text(enc(k)) for k in keys]


@pytest.mark.parametrize("enc", [_plain, _url], ids=["plain", "url"])
def test_key_texts_equal_the_per_key_form(enc):
    assert key_texts([], enc) == []
    assert key_texts(PLAIN, enc) == PLAIN                       # nothing to change: the keys as they are
    for special in SPECIAL:                                     # one key that needs work, among plain ones
        for at in (0, 2, len(PLAIN)):
            page = PLAIN[:at] + [special] + PLAIN[at:]
            assert key_texts(page, enc) == reference(page, enc), (special, at)
    rng = random.Random(7)
    alphabet = "ab/-_.~ &<>\"\r%+é中😀"
    for _ in range(300):
        page = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(rng.randint(0, 8))]
        assert key_texts(page, enc) == reference(page, enc), page


def test_key_texts_escape_and_encode_for_real():
    """The reference itself, spelled out: what a client must find in the XML."""
    assert key_texts(["a&b", "c"], _plain) == ["a&amp;b", "c"]
    assert key_texts(["a\rb", 'q"'], _plain) == ["a&#13;b", "q&quot;"]
    assert key_texts(["a&b", "c d/é"], _url) == ["a%26b", "c%20d/%C3%A9"]
    assert key_texts(["a~b/c-d_e.f"], _url) == ["a~b/c-d_e.f"]
    assert quote("<", safe="-_.~/") == "%3C" and key_texts(["<"], _url) == ["%3C"]


@pytest.mark.parametrize("us", [0, 1, 999, 1000, 999_999, 1_000_000, 1_700_000_000_123_456, 1_700_000_000_999_999,
                                253_402_300_799_999_999])
def test_iso8601_matches_datetime(us):
    when = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=us)
    assert xml.iso8601(us) == when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def test_iso8601_many_values_in_one_second_and_across_seconds():
    rng = random.Random(3)
    for us in [1_700_000_000_000_000 + rng.randrange(5_000_000) for _ in range(2000)]:
        when = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=us)
        assert xml.iso8601(us) == when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
