"""WSGI middleware in front of Flask: request ids and virtual-hosted-style buckets.

``<bucket>.<domain>`` is recognised only for the configured domains
(``server.virtual_host_domains``); any other Host is path style. No guessing.
"""
from __future__ import annotations

import os


class AddressingMiddleware:
    def __init__(self, app, domains: tuple[str, ...]) -> None:
        self.app = app
        self.suffixes = tuple("." + d for d in domains)

    def __call__(self, environ, start_response):
        environ["bleepstore.request_id"] = os.urandom(8).hex().upper()
        if self.suffixes:
            host = environ.get("HTTP_HOST", "").lower()
            host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            for suffix in self.suffixes:
                if host.endswith(suffix) and len(host) > len(suffix):
                    environ["bleepstore.vhost_bucket"] = host[: -len(suffix)]
                    break
        return self.app(environ, start_response)
