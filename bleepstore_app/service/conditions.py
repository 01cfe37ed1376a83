"""Conditional requests: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since.

Precedence as the AWS S3 API Reference states for GetObject (after RFC 7232):
If-Match decides over If-Unmodified-Since (a matching ETag wins: 200), and
If-None-Match decides over If-Modified-Since (a matching ETag: 304). The same
rules, with 412 in place of 304, guard CopyObject's x-amz-copy-source-if-* headers.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import errors


@dataclass(frozen=True)
class Conditions:
    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: int | None = None    # epoch seconds
    if_unmodified_since: int | None = None  # epoch seconds

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.if_match, self.if_none_match,
                                           self.if_modified_since, self.if_unmodified_since))


class NotModified(Exception):
    """A conditional read whose answer is 304 Not Modified (with these validators)."""

    def __init__(self, etag: str, last_modified_us: int) -> None:
        super().__init__(etag)
        self.etag, self.last_modified_us = etag, last_modified_us


def etag_matches(header: str, etag: str) -> bool:
    """Does an If-Match / If-None-Match list name this ETag ('*' names any)?"""
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == "*" or candidate.strip('"') == etag:
            return True
    return False


def check_read(cond: Conditions, etag: str, last_modified_us: int, copy_source: bool = False) -> None:
    """Raise PreconditionFailed (412) or NotModified (304) when a condition fails.

    For CopyObject's copy-source conditions every failure is 412.
    """
    modified = last_modified_us // 1_000_000
    prefix = "x-amz-copy-source-" if copy_source else ""
    if cond.if_match is not None:
        if not etag_matches(cond.if_match, etag):
            raise errors.PreconditionFailed(Condition=f"{prefix}If-Match")
    elif cond.if_unmodified_since is not None and modified > cond.if_unmodified_since:
        raise errors.PreconditionFailed(Condition=f"{prefix}If-Unmodified-Since")
    if cond.if_none_match is not None:
        if etag_matches(cond.if_none_match, etag):
            if copy_source:
                raise errors.PreconditionFailed(Condition=f"{prefix}If-None-Match")
            raise NotModified(etag, last_modified_us)
    elif cond.if_modified_since is not None and modified <= cond.if_modified_since:
        if copy_source:
            raise errors.PreconditionFailed(Condition=f"{prefix}If-Modified-Since")
        raise NotModified(etag, last_modified_us)
