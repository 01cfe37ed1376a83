"""SSE-C behind no trusted proxy: X-Forwarded-Proto from a peer outside gunicorn's
FORWARDED_ALLOW_IPS does not make plain HTTP count as HTTPS (a server of its own,
so it runs once, not per conformance server)."""
from __future__ import annotations

import os

from ..conformance.test_encryption import K1, SSE_S3, _absent, _client, _err, _put, plain, ssec_args
from ..servers import Server, write_config


def test_ssec_untrusted_forwarded_proto_refused(tmp_path):
    """A server that does not trust the client as a proxy (its address is not in
    FORWARDED_ALLOW_IPS) refuses SSE-C over HTTP whatever X-Forwarded-Proto says;
    SSE-S3 still works."""
    env = dict(os.environ, BLEEPSTORE_CONFIG=str(write_config(tmp_path, None)),
               FORWARDED_ALLOW_IPS="192.0.2.1")
    own = Server(tmp_path, env).start()
    client = _client(own.endpoint, True, True)
    try:
        client.create_bucket(Bucket="untrusted")
        assert _err(client.put_object, Bucket="untrusted", Key="k", Body=b"secret",
                    **ssec_args(K1)) == ("InvalidRequest", 400)
        assert _absent(client, "untrusted", "k")
        data = plain(1000, "untrusted-sse-s3")
        SSE_S3.check(_put(client, "untrusted", "s", data, SSE_S3))
        assert client.get_object(Bucket="untrusted", Key="s")["Body"].read() == data
    finally:
        client._endpoint.http_session.close()
        own.stop()
