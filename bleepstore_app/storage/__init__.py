"""Blob storage backends, chosen by the ``storage.backend`` setting.

What lives here: the StorageBackend interface (base.py) and one module per backend.
What it may import: the standard library and the backend's own SDK (imported lazily,
inside the factory), never Flask, SQLAlchemy or other bleepstore_app packages.
"""
from __future__ import annotations

from .base import StorageBackend


def make_storage(settings) -> StorageBackend:
    """Build the configured backend."""
    if settings.storage_backend == "local":
        from .local import LocalStorage
        return LocalStorage(settings.local_root_dir, fsync=settings.local_fsync)
    raise ValueError(f"storage.backend: unknown backend {settings.storage_backend!r}")
