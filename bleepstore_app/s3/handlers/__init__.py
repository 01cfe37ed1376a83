"""One function per AWS operation, registered under its AWS name.

A handler takes (Services, S3Request), calls the service layer and returns an
S3Result; it never writes the response itself (``s3/responses.py`` does).
"""
from __future__ import annotations

from typing import Callable

HANDLERS: dict[str, Callable] = {}


def handles(operation: str):
    """Register the decorated function as the handler of an AWS operation."""
    def register(fn: Callable) -> Callable:
        if operation in HANDLERS:
            raise RuntimeError(f"{operation} has two handlers")
        HANDLERS[operation] = fn
        return fn
    return register


def load_all() -> dict[str, Callable]:
    """Import every handler module (registration happens at import)."""
    from . import (acl, attributes, bucket_config, buckets, cors, encryption, lifecycle, listing,  # noqa: F401
                   multipart, object_lock, objects, ownership_controls, policy, post_object, public_access_block,
                   service, tagging, versions)
    return HANDLERS
