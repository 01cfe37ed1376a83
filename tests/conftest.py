"""Shared fixtures: a real `bleepstore serve` per metadata engine, and clients.

Conformance tests run against SQLite always, and against PostgreSQL too when
BLEEPSTORE_TEST_DATABASE_URL is set (CI sets it; a missing server then fails).
"""
from __future__ import annotations

import os
import uuid

import boto3
import pytest
from botocore.config import Config

from .servers import (ACCESS_KEY, OTHER_ACCESS_KEY, OTHER_SECRET_KEY, SECRET_KEY, PostgresDatabases,
                      Server, write_config)

PG_URL = os.environ.get("BLEEPSTORE_TEST_DATABASE_URL")
ENGINES = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="session")
def pg_databases():
    if not PG_URL:
        yield None
        return
    dbs = PostgresDatabases(PG_URL)
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session", params=ENGINES)
def server(request, tmp_path_factory, pg_databases):
    """A running server (2 gevent workers) on the engine of this parametrisation."""
    workdir = tmp_path_factory.mktemp(f"server-{request.param}")
    url = pg_databases.create() if request.param == "postgresql" else None
    config = write_config(workdir, url)
    env = dict(os.environ, BLEEPSTORE_CONFIG=str(config))
    srv = Server(workdir, env).start()
    srv.engine = request.param
    yield srv
    srv.stop()


def make_client(endpoint: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, **config):
    config.setdefault("signature_version", "s3v4")
    cfg = Config(s3={"addressing_style": config.pop("addressing_style", "path")},
                 retries={"max_attempts": 1}, **config)
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                        aws_secret_access_key=secret_key, region_name="us-east-1", config=cfg)


@pytest.fixture(scope="session")
def s3(server):
    return make_client(server.endpoint)


@pytest.fixture(scope="session")
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
