"""Conformance-suite fixtures: a real `bleepstore serve` per metadata engine (and
gateway backend, and the nginx cluster), clients, fresh buckets.

Package scope: each parametrisation's server stops when the conformance tests are
done with it, not at the end of the session, so the last one (the three-node
cluster on PostgreSQL) does not hold its connections while the deployment tests
start their own cluster on the same PostgreSQL server.
"""
from __future__ import annotations

import gc
import os
import uuid

import pytest

from ..cluster import Cluster
from ..conftest import CLUSTER, ENGINES, GATEWAY_EMULATORS, GATEWAYS, make_client
from ..nginx import Nginx
from ..servers import OTHER_ACCESS_KEY, OTHER_SECRET_KEY, Server, write_config


@pytest.fixture(scope="package", params=ENGINES + [f"sqlite+{g}" for g in GATEWAYS] + CLUSTER)
def server(request, tmp_path_factory, pg_databases, emulators):
    """A running server (2 gevent workers) on the engine (and gateway backend) of
    this parametrisation, or three of them behind nginx ("cluster")."""
    if request.param == "cluster":
        cluster = Cluster(tmp_path_factory.mktemp("cluster"), pg_databases.create()).start()
        yield cluster
        cluster.stop()
        return
    engine, _, gateway = request.param.partition("+")
    workdir = tmp_path_factory.mktemp(f"server-{engine}-{gateway or 'local'}")
    url = pg_databases.create() if engine == "postgresql" else None
    env = dict(os.environ)
    storage = None
    if gateway:
        emulator = emulators.get(GATEWAY_EMULATORS[gateway])
        storage, env = emulator.yaml, dict(env, **emulator.env)
    env["BLEEPSTORE_CONFIG"] = str(write_config(workdir, url, storage=storage))
    srv = Server(workdir, env).start()
    srv.engine, srv.backend = engine, gateway or "local"
    srv.inline_max_size = 0 if gateway else 16 * 1024  # gateways: every object goes to the cloud
    yield srv
    srv.stop()


@pytest.fixture(scope="package")
def s3(server):
    return make_client(server.endpoint)


@pytest.fixture(scope="package")
def s3_other(server):
    return make_client(server.endpoint, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)


@pytest.fixture
def bucket(s3):
    """A fresh bucket, emptied and deleted after the test."""
    name = "test-" + uuid.uuid4().hex[:16]
    s3.create_bucket(Bucket=name)
    yield name
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=name):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        for k in keys:
            s3.delete_object(Bucket=name, Key=k["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture(scope="package")
def tls_endpoint(server, tmp_path_factory):
    """(https_url, ca_bundle_path): nginx terminating TLS in front of ``server``."""
    proxy = Nginx(f"127.0.0.1:{server.port}", tmp_path_factory.mktemp(f"nginx-{server.engine}")).start()
    try:
        yield proxy.url, str(proxy.ca_bundle)
    finally:
        proxy.stop()


@pytest.fixture(scope="package", autouse=True)
def _close_client_connections(server, s3, s3_other):
    """Close the boto3 clients' keep-alive connections before the server stops (the
    workers close idle connections on SIGTERM themselves since the pywsgi worker;
    this keeps the stop independent of that)."""
    yield
    for client in (s3, s3_other):
        client._endpoint.http_session.close()
    gc.collect()
