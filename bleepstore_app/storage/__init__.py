"""Blob storage backends, chosen by the ``storage.backend`` setting.

What lives here: the StorageBackend interface (base.py) and one module per backend.
What it may import: the standard library and the backend's own SDK (imported lazily,
inside the factory), never Flask, SQLAlchemy or other bleepstore_app packages.
"""
from __future__ import annotations

from .base import StorageBackend


def make_storage(settings) -> StorageBackend:
    """Build the configured backend."""
    backend = settings.storage_backend
    if backend == "local":
        from .local import LocalStorage
        return LocalStorage(settings.local_root_dir, fsync=settings.local_fsync)
    try:
        if backend == "aws":
            from .aws import AwsStorage
            return AwsStorage(settings.gateway)
        if backend == "gcp":
            from .gcp import GcpStorage
            return GcpStorage(settings.gateway)
        if backend == "azure":
            from .azure import AzureStorage
            return AzureStorage(settings.gateway)
    except ImportError as exc:  # the SDK is an optional extra
        raise ValueError(f"storage.backend: {backend} needs {exc.name}; install it with "
                         f"pip install 'bleepstore[{backend}]'") from None
    raise ValueError(f"storage.backend: unknown backend {backend!r}")
