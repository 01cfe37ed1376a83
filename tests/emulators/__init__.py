"""Cloud storage emulators started by the tests, as real processes on free ports.

Each launcher returns an ``Emulator``: the process, its endpoint, and the
gateway settings (a dataclass from bleepstore_app.config) that point a
BleepStore backend at it. Tests never reach the internet or a cloud metadata
endpoint: every launcher passes explicit credentials and the environment below.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..servers import free_port

# No SDK may look for instance credentials or a metadata server.
OFFLINE_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_GCE_CHECK": "true",
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
}


@dataclass
class Emulator:
    name: str
    proc: subprocess.Popen
    endpoint: str
    workdir: Path
    settings: Any = None                 # AwsSettings / GcpSettings / AzureSettings
    env: dict = field(default_factory=dict)  # environment the BleepStore server needs (credentials)
    yaml: str = ""                       # the storage: section for a server's config file

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        path = self.workdir / "emulator.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def start_process(name: str, argv: list[str], workdir: Path, env: dict | None = None) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    log = open(workdir / "emulator.log", "ab")
    return subprocess.Popen(argv, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, **(env or {})), start_new_session=True)


def wait_http(proc: subprocess.Popen, url: str, workdir: Path, timeout: float = 60.0,
              ok=lambda status: status < 500) -> None:
    """Wait until ``url`` answers (any status ``ok`` accepts); fail with the log if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if ok(resp.status):
                    return
        except urllib.error.HTTPError as exc:
            if ok(exc.code):
                return
        except OSError:
            pass
        time.sleep(0.2)
    log = (workdir / "emulator.log").read_text(errors="replace")[-3000:] if (workdir / "emulator.log").exists() else ""
    raise RuntimeError(f"{url} did not come up (exit code {proc.poll()}):\n{log}")


def require_binary(path: str | None, what: str, install: str) -> str:
    """The path of a binary the tests need, or an error that says how to install it."""
    if path and (os.path.exists(path) or shutil.which(path)):
        return path
    raise RuntimeError(f"{what} not found; {install}")


__all__ = ["Emulator", "OFFLINE_ENV", "free_port", "require_binary", "start_process", "wait_http"]
