"""Conformance-suite fixtures on top of tests/conftest.py."""
from __future__ import annotations

import gc

import pytest


@pytest.fixture(scope="session", autouse=True)
def _close_client_connections(server, s3, s3_other):
    """Close the boto3 clients' keep-alive connections before the server stops (the
    workers close idle connections on SIGTERM themselves since the pywsgi worker;
    this keeps the stop independent of that)."""
    yield
    for client in (s3, s3_other):
        client._endpoint.http_session.close()
    gc.collect()
