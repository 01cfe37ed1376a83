"""Azurite (the Azure Storage emulator) as a real process, for the "azure" backend.

Azurite is an npm package pinned in the repository's package.json; install it
with ``npm ci`` in the repository root. We run its blob server with ``node``
directly (not npx) so the process we hold, and stop, is the server itself.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from bleepstore_app.config import AzureSettings

from . import OFFLINE_ENV, Emulator, free_port, start_process, wait_http

ROOT = Path(__file__).resolve().parents[2]
AZURITE_BLOB = ROOT / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
INSTALL = "run `npm ci` in the repository root (package.json pins it)"

ACCOUNT = "devstoreaccount1"
# Azurite's fixed, publicly documented development key (not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "bleepstore-backing"


def start_azurite(workdir: Path) -> Emulator:
    """Start Azurite's blob service on a free port with container ``bleepstore-backing``."""
    if not AZURITE_BLOB.exists():
        raise RuntimeError(f"Azurite not installed; {INSTALL}")
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node not found; install Node.js (>= 20), then " + INSTALL)
    port = free_port()
    argv = [node, str(AZURITE_BLOB), "--blobHost", "127.0.0.1", "--blobPort", str(port),
            "--location", str(workdir / "azurite"), "--skipApiVersionCheck", "--loose", "--silent",
            "--disableTelemetry"]
    proc = start_process("azurite", argv, workdir, env=OFFLINE_ENV)
    endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
    emulator = Emulator("azurite", proc, endpoint, workdir)
    try:
        # Unauthenticated requests get 403: enough to know it listens.
        wait_http(proc, f"{endpoint}?comp=list", workdir, timeout=60)
        connection_string = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                             f"BlobEndpoint={endpoint};")
        _create_container(connection_string)
    except BaseException:
        emulator.stop()
        raise
    emulator.settings = AzureSettings(
        container=CONTAINER, account_url=endpoint, prefix="bleepstore/", connection_string=connection_string,
        account_key="", sas_token="", block_size=8 * 1024 * 1024, max_pool_connections=64)
    emulator.env = dict(OFFLINE_ENV)
    emulator.yaml = _yaml(emulator.settings)
    return emulator


def _create_container(connection_string: str) -> None:
    from azure.storage.blob import BlobServiceClient
    with BlobServiceClient.from_connection_string(connection_string, retry_total=2, initial_backoff=1) as service:
        service.create_container(CONTAINER)


def _yaml(settings: AzureSettings) -> str:
    q = json.dumps  # a JSON string is a valid YAML scalar
    return (
        "storage:\n"
        "  backend: azure\n"
        "  inline_max_size: 0\n"
        "  azure:\n"
        f"    container: {q(settings.container)}\n"
        f"    account_url: {q(settings.account_url)}\n"
        f"    prefix: {q(settings.prefix)}\n"
        f"    connection_string: {q(settings.connection_string)}\n"
        f"    block_size: {settings.block_size}\n"
        f"    max_pool_connections: {settings.max_pool_connections}\n"
    )
