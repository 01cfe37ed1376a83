"""Shared fixtures: PostgreSQL test databases, cloud emulators, and a boto3 client factory.

The conformance suite's server fixture (one per engine) is in conformance/conftest.py.

Conformance tests run against SQLite always, and against PostgreSQL too when
BLEEPSTORE_TEST_DATABASE_URL is set (CI sets it; a missing server then fails).
"""
from __future__ import annotations

import os

import boto3
import pytest
from botocore.config import Config

from .servers import ACCESS_KEY, SECRET_KEY, PostgresDatabases

PG_URL = os.environ.get("BLEEPSTORE_TEST_DATABASE_URL")
ENGINES = ["sqlite"] + (["postgresql"] if PG_URL else [])
# Gateway backends to run the server-level suites on too (SQLite metadata, every
# object in the cloud emulator): BLEEPSTORE_TEST_GATEWAYS=aws-moto,gcp,azure,...
GATEWAY_EMULATORS = {"aws-moto": "moto", "aws-seaweedfs": "seaweedfs", "gcp": "gcs", "azure": "azurite"}
GATEWAYS = [g.strip() for g in os.environ.get("BLEEPSTORE_TEST_GATEWAYS", "").split(",") if g.strip()]
# The whole conformance suite through nginx in front of three nodes on one
# PostgreSQL database (deploy/): BLEEPSTORE_TEST_CLUSTER=1.
CLUSTER = ["cluster"] if os.environ.get("BLEEPSTORE_TEST_CLUSTER") == "1" else []
if CLUSTER and not PG_URL:
    raise RuntimeError("BLEEPSTORE_TEST_CLUSTER=1 needs BLEEPSTORE_TEST_DATABASE_URL (PostgreSQL)")
for _name in GATEWAYS:
    if _name not in GATEWAY_EMULATORS:
        raise RuntimeError(f"BLEEPSTORE_TEST_GATEWAYS: unknown gateway {_name!r}; known: {', '.join(GATEWAY_EMULATORS)}")


@pytest.fixture(scope="session")
def pg_databases():
    if not PG_URL:
        yield None
        return
    dbs = PostgresDatabases(PG_URL)
    yield dbs
    dbs.drop_all()


def make_client(endpoint: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, **config):
    config.setdefault("signature_version", "s3v4")
    cfg = Config(s3={"addressing_style": config.pop("addressing_style", "path")},
                 retries={"max_attempts": 1}, **config)
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                        aws_secret_access_key=secret_key, region_name="us-east-1", config=cfg)


class Emulators:
    """Cloud emulators started on first use and stopped at the end of the session."""

    def __init__(self, root) -> None:
        self.root = root
        self.running: dict = {}

    def get(self, name: str):
        if name not in self.running:
            import importlib
            module, function = {"moto": ("s3", "start_moto"), "seaweedfs": ("s3", "start_seaweedfs"),
                                "gcs": ("gcs", "start_gcs"), "azurite": ("azure", "start_azurite")}[name]
            start = getattr(importlib.import_module(f".emulators.{module}", __package__), function)
            self.running[name] = start(self.root / name)
        return self.running[name]

    def stop_all(self) -> None:
        for emulator in self.running.values():
            emulator.stop()
        self.running.clear()


@pytest.fixture(scope="session")
def emulators(tmp_path_factory):
    registry = Emulators(tmp_path_factory.mktemp("emulators"))
    yield registry
    registry.stop_all()


# The server-level suites that move object bytes through the storage backend; on
# gateway backends only these run (the rest, auth, listing, ACLs, addressing,
# conditions, buckets and the other clients, do not touch the blobs in a way the
# backend could change, and run on both metadata engines and through nginx).
# Suites whose point on a gateway is proved by one of them (Object Lock is enforced
# in the metadata, whatever the backend); they skip the others and the cluster,
# where the versioning suites already run (their retention tests wait out dates).
ONE_GATEWAY_SUITES = {"test_object_lock": "sqlite+aws-moto", "test_tagging": "sqlite+aws-moto",
                      "test_post_object": "sqlite+aws-moto"}
GATEWAY_SUITES = {"test_objects", "test_multipart", "test_copy_object", "test_delete_objects",
                  "test_checksums", "test_chunked_bodies", "test_awscli", "test_versioning", "test_object_lock",
                  "test_encryption", "test_object_attributes", "test_tagging", "test_lifecycle_runs",
                  "test_post_object", "test_generic_sigv4"}


# The aws-moto gateway runs every GATEWAY_SUITES suite; gcp and azure, whose blob
# code the storage contract tests (tests/storage) cover call by call, run the core
# of them: plain, multipart, copied, batch-deleted, versioned, encrypted and
# lifecycle-expired objects.
CORE_GATEWAY_SUITES = {"test_objects", "test_multipart", "test_copy_object", "test_delete_objects",
                       "test_versioning", "test_encryption", "test_lifecycle_runs"}
# Through nginx to three nodes on one database, the suites where several nodes
# change the answer: writes racing and read back on another node, listings,
# versions, uploads, conditional requests, signatures and presigned URLs, ACLs and
# policies, background jobs under their lease. The client-compatibility and
# wire-format suites (other CLIs, checksums, chunked bodies, refusals) test one
# node's code, which every node runs.
CLUSTER_SUITES = {"test_objects", "test_multipart", "test_copy_object", "test_delete_objects", "test_listing",
                  "test_list_buckets", "test_buckets", "test_versioning", "test_list_object_versions",
                  "test_conditional", "test_auth", "test_presigned", "test_acl", "test_bucket_policy",
                  "test_lifecycle_runs", "test_encryption", "test_generic_sigv4"}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups set here
def pytest_collection_modifyitems(config, items):
    deselected = []
    for item in items:
        _group_for_xdist(item)
        param = getattr(getattr(item, "callspec", None), "params", {}).get("server", "")
        module = item.module.__name__.rsplit(".", 1)[-1]
        if "+" in str(param) and module not in GATEWAY_SUITES:
            deselected.append(item)
        elif "+" in str(param) and not str(param).endswith("+aws-moto") and module not in CORE_GATEWAY_SUITES:
            deselected.append(item)
        elif param == "cluster" and module not in CLUSTER_SUITES:
            deselected.append(item)
        elif module in ONE_GATEWAY_SUITES and ("+" in str(param) or param == "cluster") \
                and param != ONE_GATEWAY_SUITES[module]:
            deselected.append(item)
        elif param == "cluster" and item.get_closest_marker("direct_only"):
            deselected.append(item)  # what it checks, nginx in front would answer itself
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


def _group_for_xdist(item) -> None:
    """Under `pytest -n N --dist loadgroup` (.ci/run), keep each server parametrisation's
    tests on one worker, so its package-scoped server starts once, and each other module
    on one worker, so its module-scoped servers start once."""
    param = getattr(getattr(item, "callspec", None), "params", {}).get("server")
    name = f"server-{param}" if isinstance(param, str) else item.module.__name__
    item.add_marker(pytest.mark.xdist_group(name))
