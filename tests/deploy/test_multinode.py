"""Three BleepStore nodes on ONE PostgreSQL database and ONE shared data directory,
behind nginx rendered from deploy/nginx.conf (round-robin), each node started the
way the container starts it (deploy/entrypoint.sh -> gunicorn, 2 gevent workers,
migrations off after one deploy/migrate.sh).

Checked: real clients through nginx (boto3, the AWS CLI; header-signed and presigned;
path and virtual-hosted style; TLS), read/list/delete-after-write across nodes,
racing writers on different nodes, kill -9 of a node under traffic, and a 2 GiB
transfer streamed with flat memory on every hop. PostgreSQL and nginx are required.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from ..conftest import make_client
from ..servers import ACCESS_KEY, SECRET_KEY
from .support import (VENV_BIN, Nginx, Node, blob_files, leaked_blobs, node_environment, postgres_databases,
                      proc_status_kib, process_environ, reset_peak_rss, run_migrate, service_environment,
                      temp_files)

pytestmark = pytest.mark.postgres

MiB = 1024 * 1024
ADMIN_TOKEN = "multinode-admin-" + uuid.uuid4().hex
CACHE_SECONDS = 2


@dataclass
class Cluster:
    nodes: list[Node]
    nginx: Nginx
    database_url: str
    root_dir: Path

    def clients(self) -> list:
        return [make_client(n.endpoint) for n in self.nodes]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multinode")
    dbs = postgres_databases()
    url = dbs.create()
    root = tmp / "objects"
    migrate = run_migrate(process_environ(service_environment("migrate", {
        "BLEEPSTORE_METADATA_POSTGRESQL_URL": url, "BLEEPSTORE_STORAGE_LOCAL_ROOT_DIR": str(root)})))
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    # Unlinked blobs are deleted by the cluster's sweeper a second after they are
    # unlinked (one worker of the six at a time holds its lease), so the leak checks
    # below see it do its work.
    sweep = {"BLEEPSTORE_STORAGE_GARBAGE_GRACE_SECONDS": "0", "BLEEPSTORE_STORAGE_SWEEP_INTERVAL_SECONDS": "1",
             # the admin API on every node; a credential change reaches all of them within 2 s
             "BLEEPSTORE_ADMIN_TOKEN": ADMIN_TOKEN, "BLEEPSTORE_AUTH_CACHE_SECONDS": str(CACHE_SECONDS)}
    nodes = [Node(f"node{i}", node_environment(url, root, **sweep), tmp / f"node{i}") for i in range(3)]
    nginx = None
    try:
        for node in nodes:  # all three start at once against one database and directory
            assert node.env["BLEEPSTORE_METADATA_MIGRATE_ON_START"] == "false"
            assert node.env["BLEEPSTORE_SERVER_WORKERS"] == "2"
            node.spawn()
        for node in nodes:
            node.wait_ready()
        nginx = Nginx(tmp / "nginx", [f"127.0.0.1:{n.port}" for n in nodes]).start()
        yield Cluster(nodes, nginx, url, root)
    finally:
        if nginx:
            nginx.stop()
        for node in nodes:
            node.stop()
        dbs.drop_all()


def new_bucket(s3) -> str:
    name = "mn-" + uuid.uuid4().hex[:16]
    s3.create_bucket(Bucket=name)
    return name


def error_code(exc: botocore.exceptions.ClientError) -> tuple[int, str]:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]


def operations_served(node: Node, operation: str) -> int:
    return node.log_path.read_text(errors="replace").count(f'"operation": "{operation}"')


# -- clients through nginx ------------------------------------------------------------

def test_boto3_through_nginx_round_robin(cluster):
    s3 = make_client(cluster.nginx.endpoint)
    before = [operations_served(n, "PutObject") for n in cluster.nodes]
    bucket = new_bucket(s3)
    bodies = {f"dir/obj-{i}": os.urandom(30_000 + i) for i in range(12)}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    for key, body in bodies.items():
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == body
        assert got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="dir/")
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted(bodies)
    # Round-robin: every node served some of the PUTs.
    served = [operations_served(n, "PutObject") - b for n, b in zip(cluster.nodes, before)]
    assert all(count > 0 for count in served), served
    assert sum(served) == len(bodies)

    # Presigned (query-signed) GET and PUT, through nginx.
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "presigned"})
    assert requests.put(put_url, data=b"presigned body", timeout=30).status_code == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "presigned"})
    got = requests.get(get_url, timeout=30)
    assert got.status_code == 200 and got.content == b"presigned body"

    # Multipart: parts land on different nodes, completion on yet another.
    big = os.urandom(17 * MiB)
    s3.upload_fileobj(__import__("io").BytesIO(big), bucket, "multipart",
                      Config=TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB,
                                            max_concurrency=4))
    obj = s3.get_object(Bucket=bucket, Key="multipart")
    assert obj["ETag"].endswith('-4"') and obj["Body"].read() == big


def test_tls_through_nginx(cluster):
    """The TLS server block: boto3 over HTTPS (aws-chunked bodies with checksum trailers)."""
    s3 = boto3.client("s3", endpoint_url=cluster.nginx.tls_endpoint, region_name="us-east-1",
                      aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                      verify=str(cluster.nginx.cert),
                      config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    bucket = new_bucket(s3)
    body = os.urandom(200_000)
    s3.put_object(Bucket=bucket, Key="tls", Body=body)
    assert s3.get_object(Bucket=bucket, Key="tls")["Body"].read() == body
    # nginx sends X-Forwarded-Proto: https and the Host as sent; gunicorn trusts the
    # former from FORWARDED_ALLOW_IPS (default 127.0.0.1; docker-compose.yml sets "*"),
    # so absolute URLs name the TLS endpoint even with server.public_url unset.
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mpu")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mpu", UploadId=upload, PartNumber=1, Body=b"part")["ETag"]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mpu", UploadId=upload,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert done["Location"] == f"{cluster.nginx.tls_endpoint}/{bucket}/mpu"


@pytest.fixture
def vhost_dns(monkeypatch):
    """<bucket>.s3.localhost resolves to 127.0.0.1, as a DNS wildcard would."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and (host == "s3.localhost" or host.endswith(".s3.localhost")):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_virtual_hosted_style_through_nginx(cluster, vhost_dns):
    port = cluster.nginx.http_port
    vhost = make_client(f"http://s3.localhost:{port}", addressing_style="virtual")
    bucket = "vh-" + uuid.uuid4().hex[:12]
    vhost.create_bucket(Bucket=bucket)
    vhost.put_object(Bucket=bucket, Key="a/b.txt", Body=b"virtual")
    assert vhost.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"virtual"
    assert [o["Key"] for o in vhost.list_objects_v2(Bucket=bucket)["Contents"]] == ["a/b.txt"]
    # The same object path style, through the same nginx.
    path = make_client(cluster.nginx.endpoint)
    assert path.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"virtual"

    # A presigned virtual-hosted URL, sent to nginx's address with the Host it was signed for.
    url = vhost.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a/b.txt"})
    assert url.startswith(f"http://{bucket}.s3.localhost:{port}/a/b.txt?")
    direct = url.replace(f"http://{bucket}.s3.localhost:{port}", f"http://127.0.0.1:{port}")
    got = requests.get(direct, headers={"Host": f"{bucket}.s3.localhost:{port}"}, timeout=30)
    assert got.status_code == 200 and got.content == b"virtual"
    # Over TLS too (the certificate covers *.s3.localhost).
    tls = boto3.client("s3", endpoint_url=f"https://s3.localhost:{cluster.nginx.https_port}",
                       region_name="us-east-1", aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                       verify=str(cluster.nginx.cert),
                       config=Config(s3={"addressing_style": "virtual"}, retries={"max_attempts": 1}))
    assert tls.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"virtual"


def test_aws_cli_through_nginx(cluster, tmp_path):
    env = process_environ({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(tmp_path / "none"),
                           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                           "AWS_EC2_METADATA_DISABLED": "true"})
    aws = [str(VENV_BIN / "aws"), "--endpoint-url", cluster.nginx.endpoint]

    def run(*args: str) -> str:
        proc = subprocess.run([*aws, *args], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"aws {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    bucket = "cli-" + uuid.uuid4().hex[:12]
    run("s3", "mb", f"s3://{bucket}")
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(20 * MiB))  # > 8 MiB: the CLI uploads it in parts
    (tmp_path / "small.txt").write_text("small file\n")
    run("s3", "cp", str(src), f"s3://{bucket}/data/big.bin")
    run("s3", "cp", str(tmp_path / "small.txt"), f"s3://{bucket}/data/small.txt")
    listing = run("s3", "ls", f"s3://{bucket}/data/")
    assert "big.bin" in listing and "small.txt" in listing
    run("s3", "cp", f"s3://{bucket}/data/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    head = json.loads(run("s3api", "head-object", "--bucket", bucket, "--key", "data/small.txt"))
    assert head["ContentLength"] == len("small file\n")
    url = run("s3", "presign", f"s3://{bucket}/data/small.txt").strip()
    got = requests.get(url, timeout=30)
    assert got.status_code == 200 and got.text == "small file\n"
    run("s3", "rm", "--recursive", f"s3://{bucket}")
    run("s3", "rb", f"s3://{bucket}")


# -- consistency across nodes ---------------------------------------------------------

@pytest.mark.parametrize("size", [100, 50_000], ids=["inline", "blob"])
def test_read_list_delete_after_write_across_nodes(cluster, size):
    clients = cluster.clients()
    bucket = new_bucket(clients[0])
    for c in clients[1:]:
        c.head_bucket(Bucket=bucket)  # the new bucket, immediately, on the other nodes
    for w in range(3):
        writer, readers = clients[w], [clients[(w + 1) % 3], clients[(w + 2) % 3]]
        key = f"key-{w}"
        first = os.urandom(size)
        writer.put_object(Bucket=bucket, Key=key, Body=first)
        for r in readers:  # read-after-write and list-after-write, at once, elsewhere
            assert r.get_object(Bucket=bucket, Key=key)["Body"].read() == first
            assert key in [o["Key"] for o in r.list_objects_v2(Bucket=bucket).get("Contents", [])]
        second = os.urandom(size)
        readers[0].put_object(Bucket=bucket, Key=key, Body=second)  # overwrite elsewhere
        for r in (writer, readers[1]):
            assert r.get_object(Bucket=bucket, Key=key)["Body"].read() == second
        readers[1].delete_object(Bucket=bucket, Key=key)  # delete on the third node
        for r in (writer, readers[0]):
            with pytest.raises(botocore.exceptions.ClientError) as err:
                r.head_object(Bucket=bucket, Key=key)
            assert error_code(err.value)[0] == 404
            assert key not in [o["Key"] for o in r.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not leaked_blobs(cluster.root_dir, cluster.database_url)


def test_concurrent_writers_of_one_key_on_all_nodes(cluster):
    clients = cluster.clients()
    bucket = new_bucket(clients[0])
    bodies = [os.urandom(40_000) + i.to_bytes(2, "big") for i in range(30)]
    barrier = threading.Barrier(len(bodies))
    files_before = blob_files(cluster.root_dir)

    def put(i: int) -> str:
        barrier.wait()
        return clients[i % 3].put_object(Bucket=bucket, Key="contended", Body=bodies[i])["ETag"]

    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        etags = list(pool.map(put, range(len(bodies))))
    assert len(set(etags)) == len(bodies)  # every PUT succeeded with its own body
    finals = [c.get_object(Bucket=bucket, Key="contended") for c in clients]
    contents = {f["Body"].read() for f in finals}
    assert len(contents) == 1, "the nodes disagree on the final version"
    final = contents.pop()
    assert final in bodies
    assert {f["ETag"] for f in finals} == {f'"{hashlib.md5(final).hexdigest()}"'}
    # 29 replaced versions: their blobs are gone (swept), only the final one remains.
    assert not leaked_blobs(cluster.root_dir, cluster.database_url)
    assert len(blob_files(cluster.root_dir) - files_before) == 1
    assert temp_files(cluster.root_dir) == []


def test_conditional_create_race_has_one_winner(cluster):
    clients = [c for c in cluster.clients() for _ in range(3)]  # three writers per node
    bucket = new_bucket(clients[0])
    for round_ in range(6):
        key = f"once-{round_}"
        bodies = [os.urandom(20_000) for _ in clients]
        barrier = threading.Barrier(len(clients))

        def put(i: int):
            barrier.wait()
            try:
                clients[i].put_object(Bucket=bucket, Key=key, Body=bodies[i], IfNoneMatch="*")
                return i, 200, None
            except botocore.exceptions.ClientError as exc:
                return (i, *error_code(exc))

        with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
            results = list(pool.map(put, range(len(clients))))
        winners = [i for i, status, _ in results if status == 200]
        assert len(winners) == 1, results
        losers = {(status, code) for _, status, code in results if status != 200}
        assert losers <= {(412, "PreconditionFailed"), (409, "ConditionalRequestConflict")}, losers
        for c in cluster.clients():
            assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == bodies[winners[0]]
    assert not leaked_blobs(cluster.root_dir, cluster.database_url)


def test_complete_racing_abort_on_other_nodes(cluster):
    clients = cluster.clients()
    bucket = new_bucket(clients[0])
    outcomes = []
    for round_ in range(8):
        key = f"mpu-{round_}"
        creator, completer, aborter = clients[round_ % 3], clients[(round_ + 1) % 3], clients[(round_ + 2) % 3]
        upload_id = creator.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        parts_data = [os.urandom(5 * MiB), os.urandom(1000)]
        parts = []
        for number, data in enumerate(parts_data, 1):
            uploader = clients[(round_ + number) % 3]
            etag = uploader.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                        Body=data)["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
        barrier = threading.Barrier(2)

        def complete():
            barrier.wait()
            if round_ % 2:
                time.sleep(0.002 * round_)  # vary who tends to go first
            try:
                completer.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                                    MultipartUpload={"Parts": parts})
                return 200, None
            except botocore.exceptions.ClientError as exc:
                return error_code(exc)

        def abort():
            barrier.wait()
            if not round_ % 2:
                time.sleep(0.002 * round_)
            try:
                aborter.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
                return 204, None
            except botocore.exceptions.ClientError as exc:
                return error_code(exc)

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            done, aborted = pool.submit(complete), pool.submit(abort)
            done, aborted = done.result(), aborted.result()
        if done[0] == 200:
            assert aborted == (404, "NoSuchUpload"), (done, aborted)
            for c in clients:
                assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == b"".join(parts_data)
            outcomes.append("completed")
        else:
            assert done == (404, "NoSuchUpload") and aborted[0] == 204, (done, aborted)
            for c in clients:
                with pytest.raises(botocore.exceptions.ClientError) as err:
                    c.head_object(Bucket=bucket, Key=key)
                assert error_code(err.value)[0] == 404
            outcomes.append("aborted")
        for c in clients:
            uploads = c.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
            assert upload_id not in [u["UploadId"] for u in uploads]
    print(f"\ncomplete vs abort outcomes: {outcomes}")
    assert not leaked_blobs(cluster.root_dir, cluster.database_url)
    assert temp_files(cluster.root_dir) == []


# -- a node dies under traffic ---------------------------------------------------------

RETRY_STATUS = {500, 502, 503, 504}


def with_retries(call, counter: list, attempts: int = 40, delay: float = 0.1):
    for _ in range(attempts):
        try:
            return call()
        except (botocore.exceptions.HTTPClientError, botocore.exceptions.ConnectionError):
            pass
        except botocore.exceptions.ClientError as exc:
            if exc.response["ResponseMetadata"]["HTTPStatusCode"] not in RETRY_STATUS:
                raise
        counter.append(1)
        time.sleep(delay)
    raise AssertionError("no answer after retries")


@pytest.mark.slow
def test_kill_9_one_node_under_traffic(cluster):
    nginx_s3 = make_client(cluster.nginx.endpoint)
    bucket = new_bucket(nginx_s3)
    victim, survivors = cluster.nodes[1], [cluster.nodes[0], cluster.nodes[2]]
    acked: dict[str, bytes] = {}
    acked_lock = threading.Lock()
    retries: list = []
    stop = threading.Event()
    killed_at: list[float] = []
    acked_after_kill: list[int] = [0]

    def traffic(tid: int) -> None:
        s3 = clients[tid]
        n = 0
        while not stop.is_set():
            key = f"t{tid}/{n}"
            body = os.urandom((30_000, 500, 2 * MiB)[n % 3]) + key.encode()  # inline, blob, long upload
            with_retries(lambda: s3.put_object(Bucket=bucket, Key=key, Body=body), retries)
            with acked_lock:
                acked[key] = body
                if killed_at:
                    acked_after_kill[0] += 1
            got = with_retries(lambda: s3.get_object(Bucket=bucket, Key=key)["Body"].read(), retries)
            assert got == body
            n += 1

    # No retries inside botocore: every retry is counted here.
    clients = [boto3.client("s3", endpoint_url=cluster.nginx.endpoint, region_name="us-east-1",
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                            config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}))
               for _ in range(8)]
    victim_puts = operations_served(victim, "PutObject")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(traffic, t) for t in range(8)]
        time.sleep(3)
        assert operations_served(victim, "PutObject") > victim_puts, "the victim was not serving"
        victim.kill()  # kill -9: master and workers
        killed_at.append(time.monotonic())
        # The survivors keep serving, directly too.
        for node in survivors:
            direct = make_client(node.endpoint)
            assert direct.list_objects_v2(Bucket=bucket)["KeyCount"] >= 0
        time.sleep(6)
        stop.set()
        for f in futures:
            f.result()
    print(f"\nkill -9 under traffic: {len(acked)} acknowledged PUTs, {acked_after_kill[0]} after the kill, "
          f"{len(retries)} client retries")
    assert acked_after_kill[0] > 0, "nginx stopped serving after one node died"

    # Every acknowledged PUT is readable, through nginx and on each surviving node.
    for client in [nginx_s3] + [make_client(n.endpoint) for n in survivors]:
        for key, body in acked.items():
            assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == body, key

    # The killed node restarts with the same command, no manual steps, and serves.
    victim.start()
    direct = make_client(victim.endpoint)
    for key, body in acked.items():
        assert direct.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    # Its dead writes' temp files were removed by its start-up recovery.
    assert temp_files(cluster.root_dir) == []
    orphans = leaked_blobs(cluster.root_dir, cluster.database_url, settle=0)
    print(f"blobs written by the killed node but never committed: {len(orphans)} "
          f"(removed by a start-up sweep once older than 5 minutes)")
    # nginx sends it traffic again once its fail_timeout (10 s) has passed.
    served_before = operations_served(victim, "HeadBucket")
    deadline = time.monotonic() + 30
    while operations_served(victim, "HeadBucket") == served_before and time.monotonic() < deadline:
        nginx_s3.head_bucket(Bucket=bucket)
        time.sleep(0.1)
    assert operations_served(victim, "HeadBucket") > served_before, "nginx never used the restarted node"


# -- 2 GiB through nginx ---------------------------------------------------------------

class GeneratedBody:
    """``size`` bytes made on the fly in 1 MiB chunks (md5 kept), never all in memory."""

    def __init__(self, size: int) -> None:
        self.size, self.sent = size, 0
        self.block = os.urandom(MiB)
        self.md5 = hashlib.md5()

    def __len__(self) -> int:
        return self.size

    def read(self, _n: int = -1) -> bytes:
        if self.sent >= self.size:
            return b""
        n = min(MiB, self.size - self.sent)
        chunk = (self.sent // MiB).to_bytes(8, "big") + self.block[8:n] if n > 8 else self.block[:n]
        self.sent += n
        self.md5.update(chunk)
        return chunk


def hop_processes(cluster) -> dict[str, list[int]]:
    hops = {"nginx worker": cluster.nginx.worker_pids()}
    for node in cluster.nodes:
        hops[f"{node.name} gunicorn worker"] = node.worker_pids()
    return hops


def peak_mib(pids: list[int]) -> float:
    return max(proc_status_kib(pid, "VmHWM") for pid in pids) / 1024


@pytest.mark.slow
def test_2gib_put_and_get_through_nginx_with_flat_memory(cluster):
    size = 2 * 1024 * MiB
    s3 = make_client(cluster.nginx.endpoint)
    bucket = new_bucket(s3)
    hops = hop_processes(cluster)
    reset = all(reset_peak_rss(pid) for pids in hops.values() for pid in pids)
    baseline = {hop: peak_mib(pids) for hop, pids in hops.items()}

    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "big"}, ExpiresIn=3600)
    body = GeneratedBody(size)
    started = time.monotonic()
    put = requests.put(url, data=body, timeout=600)
    put_seconds = time.monotonic() - started
    assert put.status_code == 200, put.text
    assert body.sent == size
    assert put.headers["ETag"] == f'"{body.md5.hexdigest()}"'
    after_put = {hop: peak_mib(pids) for hop, pids in hops.items()}

    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "big"}, ExpiresIn=3600)
    md5, received = hashlib.md5(), 0
    started = time.monotonic()
    with requests.get(url, stream=True, timeout=600) as got:
        assert got.status_code == 200
        for chunk in got.iter_content(MiB):
            md5.update(chunk)
            received += len(chunk)
    get_seconds = time.monotonic() - started
    assert received == size and md5.hexdigest() == body.md5.hexdigest()
    after_get = {hop: peak_mib(pids) for hop, pids in hops.items()}
    s3.delete_object(Bucket=bucket, Key="big")

    print(f"\n2 GiB through nginx: PUT {size / MiB / put_seconds:.0f} MiB/s ({put_seconds:.1f} s), "
          f"GET {size / MiB / get_seconds:.0f} MiB/s ({get_seconds:.1f} s)")
    print(f"peak RSS (VmHWM, max over the hop's processes{', reset before the transfer' if reset else ''}):")
    for hop in hops:
        print(f"  {hop:24s} before {baseline[hop]:6.1f} MiB   after PUT {after_put[hop]:6.1f} MiB   "
              f"after GET {after_get[hop]:6.1f} MiB")
    for hop, peak in after_get.items():
        assert peak < 300, f"{hop} peaked at {peak:.0f} MiB while streaming 2 GiB"


# -- credentials managed at run time -------------------------------------------------

def _admin(node: Node, method: str, path: str, body=None) -> requests.Response:
    return requests.request(method, f"{node.endpoint}/admin{path}", json=body, timeout=30,
                            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


def _refused(client, attempts: int = 6) -> None:
    """Refused on every try (the tries spread over the node's two workers)."""
    for _ in range(attempts):
        with pytest.raises(botocore.exceptions.ClientError) as exc:
            client.list_buckets()
        assert error_code(exc.value) == (403, "InvalidAccessKeyId")


def test_admin_changes_reach_every_node_without_a_restart(cluster):
    """A key made on node 0 signs on nodes 1 and 2 and through nginx at once;
    disabled on node 0, it is refused everywhere once auth.cache_seconds have
    passed; enabled on node 1, it works everywhere again; deleted on node 2, it
    is refused everywhere. No node restarts; the secret is sealed under the key
    the nodes made in their shared data directory."""
    first, second, third = cluster.nodes
    pids = [n.proc.pid for n in cluster.nodes]
    made = _admin(first, "POST", "/credentials", {"description": "multinode"})
    assert made.status_code == 201, made.text
    key = made.json()
    ak, secret = key["access_key_id"], key["secret_access_key"]
    on = {n.name: make_client(n.endpoint, ak, secret) for n in cluster.nodes}
    on["nginx"] = make_client(cluster.nginx.endpoint, ak, secret)
    bucket = new_bucket(on[second.name])
    on[third.name].put_object(Bucket=bucket, Key="k", Body=b"cluster-wide")
    for client in on.values():
        assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"cluster-wide"

    assert _admin(first, "PUT", f"/credentials/{ak}/status", {"status": "disabled"}).json()["status"] == "disabled"
    time.sleep(CACHE_SECONDS + 0.5)  # the stated bound for every worker's cached lookup
    for client in on.values():
        _refused(client)
    assert _admin(third, "GET", f"/credentials/{ak}").json()["status"] == "disabled"

    assert _admin(second, "PUT", f"/credentials/{ak}/status", {"status": "active"}).json()["status"] == "active"
    time.sleep(CACHE_SECONDS + 0.5)
    for client in on.values():
        for _ in range(3):
            assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"cluster-wide"

    on[first.name].delete_object(Bucket=bucket, Key="k")
    gone = requests.delete(f"{third.endpoint}/admin/credentials/{ak}", params={"delete_buckets": "true"},
                           headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
    assert gone.status_code == 204, gone.text
    time.sleep(CACHE_SECONDS + 0.5)
    for client in on.values():
        _refused(client)
    assert _admin(first, "GET", f"/credentials/{ak}").status_code == 404
    assert [n.proc.pid for n in cluster.nodes] == pids and all(n.proc.poll() is None for n in cluster.nodes)
    key_files = list(cluster.root_dir.glob(".credential-key/credentials.key"))
    assert len(key_files) == 1 and oct(key_files[0].stat().st_mode & 0o777) == "0o600"
