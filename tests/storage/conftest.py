"""A StorageBackend per backend kind, each on its own emulator (or a temp dir)."""
from __future__ import annotations

import dataclasses
import os

import pytest

from bleepstore_app.storage import make_storage
from bleepstore_app.storage.local import LocalStorage

from ..emulators import OFFLINE_ENV

# backend kind -> emulator; "local" needs none.
KINDS = {"local": None, "aws-moto": "moto", "aws-seaweedfs": "seaweedfs", "gcp": "gcs", "azure": "azurite"}
# Small chunks so that a few MiB exercise the multi-chunk paths (S3 parts: 5 MiB minimum).
SMALL_CHUNKS = {"aws": {"part_size": 5 * 1024 * 1024}, "gcp": {"chunk_size": 256 * 1024},
                "azure": {"block_size": 1024 * 1024}}


@pytest.fixture(scope="session", autouse=True)
def _offline_environment():
    saved = {k: os.environ.get(k) for k in OFFLINE_ENV}
    os.environ.update(OFFLINE_ENV)
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


class _Settings:
    """The two attributes make_storage reads."""

    def __init__(self, backend: str, gateway) -> None:
        self.storage_backend, self.gateway = backend, gateway


def gateway_backend(emulators, name: str, **overrides):
    emulator = emulators.get(name)
    os.environ.update(emulator.env)
    kind = type(emulator.settings).__name__.removesuffix("Settings").lower()
    settings = dataclasses.replace(emulator.settings, **overrides)
    return make_storage(_Settings(kind, settings))


@pytest.fixture(scope="session", params=list(KINDS))
def backend(request, emulators, tmp_path_factory):
    kind = request.param
    if kind == "local":
        yield LocalStorage(str(tmp_path_factory.mktemp("local-blobs")))
        return
    name = KINDS[kind]
    small = SMALL_CHUNKS[kind.split("-")[0]]
    yield gateway_backend(emulators, name, **small)
