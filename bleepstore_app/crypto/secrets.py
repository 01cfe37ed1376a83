"""Credential secrets at rest: sealed with AES-256-GCM under the credential key.

SigV4 needs the secret itself (an HMAC key), so it cannot be a one-way hash; it
is encrypted instead. The stored form is ``v1:<key id>:<base64 nonce+ciphertext>``,
bound (associated data) to its access key, so a sealed secret copied onto
another row does not open.

Which key (first that applies):
- ``auth.secret_encryption_key`` (a source, ``env:NAME`` or ``file:/path``): id ``auth``;
- else one derived (HKDF-SHA256) from the active SSE master key: id ``sse:<master id>``
  (an embedded SQLite server always has one: crypto.keys makes it on first start);
- else, with local storage, a key made once in the storage root directory (which
  every node of a local-storage cluster shares): id ``local``;
- else (PostgreSQL with a gateway backend and no key): start-up stops with one line.

Older keys stay readable while their source is configured; start-up re-seals
every row that is not under the current key (recovery.py), so after a rotation
the old key can go once one server has started.
"""
from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .keys import BadKeySource, KeyRingError, local_key, read_key_source

SCHEME = "v1"
LOCAL_SECRETS_DIR = ".credential-key"  # under storage.local.root_dir
_HKDF_INFO = b"bleepstore credential secrets v1"


class SecretUnavailable(KeyRingError):
    """A stored secret names a key this server does not hold, or did not open."""


def _derive(master: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(master)


def _aad(access_key: str) -> bytes:
    return b"bleepstore-credential:" + access_key.encode()


class SecretBox:
    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        self._keys, self.current = dict(keys), current

    def seal(self, access_key: str, secret: str) -> str:
        import os
        nonce = os.urandom(12)
        sealed = AESGCM(self._keys[self.current]).encrypt(nonce, secret.encode(), _aad(access_key))
        return f"{SCHEME}:{self.current}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, access_key: str, stored: str) -> str:
        key_id = key_of(stored)
        if key_id is None or key_id not in self._keys:
            raise SecretUnavailable(f"the secret of {access_key!r} is sealed under key {key_id!r}, "
                                    f"which this server does not hold")
        try:
            blob = base64.b64decode(stored.rpartition(":")[2], validate=True)
            return AESGCM(self._keys[key_id]).decrypt(blob[:12], blob[12:], _aad(access_key)).decode()
        except (InvalidTag, ValueError, binascii.Error):
            raise SecretUnavailable(f"the sealed secret of {access_key!r} did not open") from None

    def is_current(self, stored: str | None) -> bool:
        return stored is not None and key_of(stored) == self.current


def key_of(stored: str) -> str | None:
    """The key id a stored secret names (ids may hold ':', as sse:<id>; base64
    never does); None when it is not a sealed secret."""
    if not stored.startswith(SCHEME + ":"):
        return None
    key_id, sep, _ = stored[len(SCHEME) + 1:].rpartition(":")
    return key_id if sep and key_id else None


def load_secret_box(settings, ring, environ=None) -> SecretBox:
    """The credential key (see the module docstring) plus every older one still
    derivable from the configuration, for reading."""
    import os

    from ..config import ConfigError
    environ = os.environ if environ is None else environ
    keys: dict[str, bytes] = {}
    for master_id, material in ring.master_materials().items():
        keys[f"sse:{master_id}"] = _derive(material)
    local_dir = Path(settings.local_root_dir).absolute() / LOCAL_SECRETS_DIR
    if (local_dir / "credentials.key").exists():
        keys["local"] = read_key_source(f"file:{local_dir / 'credentials.key'}")
    current = None
    if settings.secret_encryption_key:
        try:
            keys["auth"] = read_key_source(settings.secret_encryption_key, environ)
        except BadKeySource as exc:
            raise ConfigError(f"auth.secret_encryption_key: {exc}") from None
        current = "auth"
    elif ring.active is not None:
        current = f"sse:{ring.active}"
    elif settings.storage_backend == "local":
        keys["local"] = local_key(str(local_dir), "credentials.key")
        current = "local"
    else:
        raise ConfigError("auth.secret_encryption_key: required to encrypt stored secret keys (env:NAME or "
                          "file:/path, the same on every node) when no encryption.master_keys is configured "
                          "and storage is not local")
    return SecretBox(keys, current)
