"""A real nginx as a TLS-terminating reverse proxy in front of a server, for the tests.

Why: current boto3 / the AWS CLI send PutObject and UploadPart bodies as aws-chunked
with a checksum *trailer* (STREAMING-UNSIGNED-PAYLOAD-TRAILER) only over HTTPS; over
plain http they send the checksum as a header. To exercise those paths with real
clients the server has to be reached over TLS, as it would be in production behind
a reverse proxy.

``Nginx(upstream, workdir).start()`` runs Debian's nginx (``apt-get install nginx``;
or name the binary in $BLEEPSTORE_TEST_NGINX) in the foreground with its own
prefix, config, certificate, pid file and logs in ``workdir``, on a free port,
proxying to ``upstream`` (host:port). The configuration is
deploy/nginx-test.conf.template: bodies streamed both ways, no body size limit,
HTTP/1.1 keep-alive to the upstream, Host passed unchanged (SigV4 signs it).

The certificate is made with the openssl CLI (the ``cryptography`` package is not
a dependency of the project): a throw-away CA and a server certificate it signs for
127.0.0.1 / localhost. Clients trust the CA: ``ca_bundle`` is its PEM file.

The conformance suite's ``tls_endpoint`` fixture (conformance/conftest.py, one per
``server`` parametrisation) yields ``(https_url, ca_bundle_path)``.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import string
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .servers import ROOT, free_port

NGINX_ENV = "BLEEPSTORE_TEST_NGINX"
TEMPLATE = ROOT / "deploy" / "nginx-test.conf.template"
INSTALL_HINT = "install it with: apt-get update && apt-get install -y nginx"


def nginx_binary() -> str:
    """$BLEEPSTORE_TEST_NGINX if set, else Debian's /usr/sbin/nginx or nginx on $PATH;
    a pytest failure (not a skip) saying how to install it when there is none."""
    explicit = os.environ.get(NGINX_ENV)
    candidates = [explicit] if explicit else ["/usr/sbin/nginx", shutil.which("nginx")]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    where = f"${NGINX_ENV}={explicit}" if explicit else "/usr/sbin/nginx (or nginx on $PATH)"
    pytest.fail(f"nginx is required for the TLS tests but {where} was not found; {INSTALL_HINT}", pytrace=False)


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl CLI is required to make the test certificate; "
                    "install it with: apt-get install -y openssl", pytrace=False)
    proc = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")


def make_certificate(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
                     ) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate it signs for ``hosts``.

    Returns (ca.crt, server.crt, server.key). A separate CA (rather than one
    self-signed leaf used as its own trust anchor) keeps strict X.509 verification
    (e.g. Python >= 3.13's VERIFY_X509_STRICT default) happy.
    """
    directory.mkdir(parents=True, exist_ok=True)
    san = ",".join(("IP:" if h.replace(".", "").isdigit() or ":" in h else "DNS:") + h for h in hosts)
    (directory / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={san}\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", "7", "-subj", "/CN=BleepStore test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={hosts[0]}", cwd=directory)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "7", "-extfile", "server.ext", cwd=directory)
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


@dataclass
class Nginx:
    """A foreground nginx (master + 1 worker) terminating TLS in front of ``upstream``."""
    upstream: str                       # host:port of the plain-http server
    prefix: Path                        # nginx -p: config, certificate, pid, logs, temp files
    host: str = "127.0.0.1"
    port: int = 0
    proc: subprocess.Popen | None = None
    ca_bundle: Path = field(init=False)

    def __post_init__(self) -> None:
        self.prefix = Path(self.prefix).resolve()
        self.ca_bundle = self.prefix / "ca.crt"

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def error_log_path(self) -> Path:
        return self.prefix / "error.log"

    def config_text(self) -> str:
        # Workers of a root master drop to "nobody", which cannot use the (0700) temp
        # directory: keep them root then. As another user the directive is not needed.
        user = "user root;" if os.geteuid() == 0 else ""
        return string.Template(TEMPLATE.read_text()).substitute(
            user_directive=user, prefix=str(self.prefix), upstream=self.upstream,
            listen=f"{self.host}:{self.port}")

    def start(self, timeout: float = 15.0) -> Nginx:
        binary = nginx_binary()
        self.port = self.port or free_port()
        for sub in ("tmp", "logs"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        make_certificate(self.prefix)
        conf = self.prefix / "nginx.conf"
        conf.write_text(self.config_text())
        base = [binary, "-p", str(self.prefix), "-c", str(conf), "-e", str(self.error_log_path)]
        check = subprocess.run([*base, "-t"], capture_output=True, text=True, timeout=30, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t rejected {conf}:\n{check.stderr}")
        with open(self.prefix / "nginx.out", "ab") as log:
            self.proc = subprocess.Popen(base, cwd=self.prefix, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen on {self.host}:{self.port} within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        parts = []
        for path in (self.prefix / "nginx.out", self.error_log_path):
            if path.exists():
                parts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-5000:])
        return "\n".join(parts)

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGQUIT), then SIGTERM, then SIGKILL of nginx's own process group."""
        if not self.proc or self.proc.poll() is not None:
            return
        for sig in (signal.SIGQUIT, signal.SIGTERM):
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
                return
            except subprocess.TimeoutExpired:
                continue
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout)

