"""Sealing stored secret keys (crypto/secrets.py): which key, and what opens."""
from __future__ import annotations

import base64
import os

import pytest

from bleepstore_app.config import ConfigError, load_settings
from bleepstore_app.crypto.keys import load_key_ring
from bleepstore_app.crypto.secrets import SecretUnavailable, key_of, load_secret_box


def settings(tmp_path, **overrides):
    base = {"metadata.sqlite.path": str(tmp_path / "m.db"), "storage.local.root_dir": str(tmp_path / "objects")}
    return load_settings(overrides={**base, **overrides}, environ={})


def box_for(tmp_path, environ=None, **overrides):
    s = settings(tmp_path, **overrides)
    return load_secret_box(s, load_key_ring(s, environ=environ or {}), environ=environ or {})


def test_seal_and_open(tmp_path):
    box = box_for(tmp_path)
    sealed = box.seal("AKIA1", "the secret")
    assert "the secret" not in sealed and sealed.startswith("v1:sse:local:")
    assert box.open("AKIA1", sealed) == "the secret"
    assert box.seal("AKIA1", "the secret") != sealed  # a fresh nonce each time
    assert box.is_current(sealed) and not box.is_current(None) and not box.is_current("plain")


def test_bound_to_its_access_key_and_untampered(tmp_path):
    box = box_for(tmp_path)
    sealed = box.seal("AKIA1", "the secret")
    with pytest.raises(SecretUnavailable):
        box.open("AKIA2", sealed)  # copied onto another row
    head, _, payload = sealed.rpartition(":")
    raw = bytearray(base64.b64decode(payload))
    raw[-1] ^= 1
    with pytest.raises(SecretUnavailable):
        box.open("AKIA1", f"{head}:{base64.b64encode(bytes(raw)).decode()}")
    with pytest.raises(SecretUnavailable):
        box.open("AKIA1", "v1:other:" + payload)  # a key this server does not hold
    assert key_of("plain-secret") is None and key_of("v1:sse:m1:abc") == "sse:m1"


def test_key_choice_order(tmp_path):
    key = base64.b64encode(os.urandom(32)).decode()
    env = {"CRED_KEY": key, "MASTER": base64.b64encode(os.urandom(32)).decode()}
    configured = box_for(tmp_path, env, **{"auth.secret_encryption_key": "env:CRED_KEY",
                                           "encryption.master_keys": {"m1": "env:MASTER"}})
    assert configured.current == "auth"
    derived = box_for(tmp_path, env, **{"encryption.master_keys": {"m1": "env:MASTER"}})
    assert derived.current == "sse:m1"
    # the configured key reads what the derived one sealed while the master key stays configured
    assert configured.open("K", derived.seal("K", "s")) == "s"
    pg = {"metadata.engine": "postgresql", "metadata.postgresql.url": "postgresql+psycopg://u@h/db"}
    local = box_for(tmp_path, **pg)
    assert local.current == "local"
    assert oct((tmp_path / "objects/.credential-key/credentials.key").stat().st_mode & 0o777) == "0o600"
    assert box_for(tmp_path, **pg).open("K", local.seal("K", "s")) == "s"  # made once, then reused
    with pytest.raises(ConfigError, match="auth.secret_encryption_key"):
        box_for(tmp_path, **pg, **{"storage.backend": "aws", "storage.aws.bucket": "b"})
    with pytest.raises(ConfigError, match="auth.secret_encryption_key"):
        box_for(tmp_path, **{"auth.secret_encryption_key": "env:MISSING"})


def test_admin_token_and_key_source_validation(tmp_path):
    with pytest.raises(ConfigError, match="admin.token"):
        settings(tmp_path, **{"admin.token": "short"})
    with pytest.raises(ConfigError, match="auth.secret_encryption_key"):
        settings(tmp_path, **{"auth.secret_encryption_key": "raw-key-in-yaml"})
    assert settings(tmp_path, **{"admin.token": "t" * 16}).admin_token == "t" * 16
    assert settings(tmp_path).admin_token == ""
