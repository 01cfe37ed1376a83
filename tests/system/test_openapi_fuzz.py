"""Property-based requests from /openapi.json (schemathesis): never a server error.

Half of the generated requests go out unsigned, half signed by botocore's SigV4
signer as the main user, so the fuzzing reaches past authentication into every
handler's parsing.
"""
from __future__ import annotations

import os

import pytest
import requests
import schemathesis
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings

from ..conftest import make_client
from ..servers import ACCESS_KEY, SECRET_KEY, Server, write_config

pytestmark = pytest.mark.slow


class SigV4(requests.auth.AuthBase):
    """Sign a prepared requests.Request as botocore would (unsigned payload)."""

    def __call__(self, prepared):
        aws = AWSRequest(method=prepared.method, url=prepared.url, data=prepared.body or b"",
                         headers={k: v for k, v in prepared.headers.items() if k.lower() != "authorization"})
        aws.context["payload_signing_enabled"] = False
        S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(aws)
        for name, value in aws.headers.items():
            prepared.headers[name] = value
        return prepared


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("fuzz")
    env = dict(os.environ, BLEEPSTORE_CONFIG=str(write_config(workdir, None)), BLEEPSTORE_SERVER_ACCESS_LOG="false")
    srv = Server(workdir, env).start()
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="fuzz")
    s3.put_object(Bucket="fuzz", Key="existing", Body=b"data")
    yield srv
    srv.stop()


def test_openapi_operations_never_answer_5xx(fuzz_server):
    """Every operation of the document, 25 generated requests each, unsigned and signed.
    (schemathesis's own pytest plugin does not run on pytest 9, so Hypothesis drives
    the operations' strategies directly.)"""
    api = schemathesis.openapi.from_url(fuzz_server.endpoint + "/openapi.json")
    failures = []
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 20

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def run(case):
            for auth in (None, SigV4()):
                response = case.call(auth=auth, timeout=30)
                # 501 NotImplemented is S3's own answer for a feature it defines that this
                # server does not offer (e.g. If-None-Match with an ETag on PutObject).
                legitimate = response.status_code == 501 and b"<Code>NotImplemented</Code>" in response.content
                if response.status_code >= 500 and not legitimate:
                    failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                    f"{response.text[:300]}")
        run()
    assert failures == [], "\n".join(failures[:20]) + "\nserver log:\n" + fuzz_server.log()[-3000:]
