"""What S3 means: buckets, objects, listing, (later) multipart and ACLs.

What lives here: operations over plain values and streams; each function is
named after the AWS operation it implements. It raises ``bleepstore_app.errors``.
What it may import: ``errors``, ``config``, ``metadata`` and ``storage``; never
Flask or ``s3/`` (the wire) — so it can be tested with a temp dir and SQLite.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated user making a request (None stands for anonymous)."""
    access_key: str
    owner_id: str
    display_name: str


@dataclass(frozen=True)
class Services:
    """The parts every operation needs, wired once by create_app()."""
    settings: object  # bleepstore_app.config.Settings
    meta: object      # bleepstore_app.metadata.store.MetadataStore
    storage: object   # bleepstore_app.storage.base.StorageBackend
    keys: object = None  # bleepstore_app.crypto.keys.KeyRing (None: no encryption, e.g. recovery)
    secrets: object = None  # bleepstore_app.crypto.secrets.SecretBox: seals stored secret keys
