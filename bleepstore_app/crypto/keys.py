"""The key ring: master keys that wrap SSE-S3 data keys, and the named keys that
stand in for KMS keys (SSE-KMS).

Keys never sit in the YAML in clear: a configured key is a *source*,
``env:NAME`` (the base64 of 32 bytes in that environment variable) or
``file:/path`` (a file holding 32 raw bytes or their base64). A data key is
wrapped with AES-256-GCM under the key's id, bound (as associated data) to what
it protects: the mode, the KMS key name and the encryption context. Rotation: add
a new master key and make it ``active_master_key``; new objects use it, old ones
keep naming the key that wrapped them (``bleepstore encryption rewrap`` moves
them to the active key, metadata only, after which the old key can go).
"""
from __future__ import annotations

import base64
import binascii
import json
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_SIZE = 32
# The id of the master key made on first start of an embedded server (SQLite)
# configured with none, kept in a file next to the database.
LOCAL_KEY_ID = "local"
LOCAL_KEY_FILE = "sse-master.key"


class KeyRingError(Exception):
    """Base for key ring failures."""


class KeyUnavailable(KeyRingError):
    """A stored data key names a key the ring does not hold (removed, renamed)."""


class UnwrapFailed(KeyRingError):
    """A wrapped data key did not open: wrong key material, or changed metadata."""


class BadKeySource(ValueError):
    """A configured key source cannot be read or is not 32 bytes."""


def read_key_source(source: str, environ=os.environ) -> bytes:
    kind, _, where = source.partition(":")
    if kind == "env":
        if where not in environ:
            raise BadKeySource(f"environment variable {where} is not set")
        raw = environ[where].encode()
    elif kind == "file":
        try:
            raw = Path(where).read_bytes()
        except OSError as exc:
            raise BadKeySource(f"{where}: {exc.strerror}") from None
    else:
        raise BadKeySource("expected env:NAME or file:/path (keys are never written in the YAML)")
    if len(raw) == KEY_SIZE and kind == "file":
        return raw
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_SIZE:
        raise BadKeySource("expected 32 bytes, or their base64 (e.g. from: openssl rand -base64 32)")
    return key


def local_key(directory: str, file_name: str = LOCAL_KEY_FILE) -> bytes:
    """The embedded server's own master key, made once (mode 0600, fsynced)."""
    path = Path(directory) / file_name
    if path.exists():  # made whole by an atomic link (below), never seen half-written
        return read_key_source(f"file:{path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, base64.b64encode(os.urandom(KEY_SIZE)) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # never replaces a key another process made meanwhile
    except FileExistsError:
        pass
    os.unlink(tmp)
    return read_key_source(f"file:{path}")


def _aad(purpose: str, name: str, context: dict | None) -> bytes:
    return json.dumps([purpose, name, context or {}], sort_keys=True, separators=(",", ":")).encode()


class KeyRing:
    def __init__(self, master_keys: dict[str, bytes], active: str | None, kms_keys: dict[str, bytes]) -> None:
        self._master = dict(master_keys)
        self.active = active if active is not None else (next(iter(master_keys)) if len(master_keys) == 1 else None)
        self._kms = dict(kms_keys)

    def master_materials(self) -> dict[str, bytes]:
        """Every master key by id (credential secrets derive their key from them)."""
        return dict(self._master)

    @property
    def has_master(self) -> bool:
        return self.active is not None

    def has_kms_key(self, name: str) -> bool:
        return name in self._kms

    @property
    def kms_key_names(self) -> list[str]:
        return sorted(self._kms)

    def wrap(self, data_key: bytes, purpose: str, context: dict | None = None, kms_key: str | None = None) -> dict:
        """A stored form of ``data_key``: {"key": id, "wrapped": base64}. Under the
        named KMS key when given, else the active master key."""
        name, material = self._material(kms_key, self.active)
        nonce = os.urandom(12)
        sealed = AESGCM(material).encrypt(nonce, data_key, _aad(purpose, name, context))
        return {"key": name, "wrapped": base64.b64encode(nonce + sealed).decode()}

    def unwrap(self, stored: dict, purpose: str, context: dict | None = None, kms: bool = False) -> bytes:
        name = stored["key"]
        _, material = self._material(name if kms else None, name)
        try:
            blob = base64.b64decode(stored["wrapped"], validate=True)
            return AESGCM(material).decrypt(blob[:12], blob[12:], _aad(purpose, name, context))
        except (InvalidTag, ValueError, binascii.Error):
            raise UnwrapFailed(f"the data key wrapped by {name!r} did not open") from None

    def derive(self, purpose: str) -> bytes | None:
        """A 32-byte secret for ``purpose`` (the console's session signing, say), the
        same on every node sharing the active master key; None without one."""
        if self.active is None or self.active not in self._master:
            return None
        return hmac.new(self._master[self.active], b"bleepstore derive:" + purpose.encode(), hashlib.sha256).digest()

    def _material(self, kms_key: str | None, master_id: str | None) -> tuple[str, bytes]:
        if kms_key is not None:
            if kms_key not in self._kms:
                raise KeyUnavailable(f"KMS key {kms_key!r} is not in encryption.kms_keys")
            return kms_key, self._kms[kms_key]
        if master_id is None or master_id not in self._master:
            raise KeyUnavailable(f"master key {master_id!r} is not in encryption.master_keys")
        return master_id, self._master[master_id]


def load_key_ring(settings, environ=None) -> KeyRing:
    """The ring the settings describe (``env:`` sources read from ``environ``,
    default the process's); an embedded server (SQLite) configured with no master
    key gets its own (``local_key``)."""
    from ..config import ConfigError
    environ = os.environ if environ is None else environ

    def read(section: str, pairs) -> dict[str, bytes]:
        keys = {}
        for name, source in pairs:
            try:
                keys[name] = read_key_source(source, environ)
            except BadKeySource as exc:
                raise ConfigError(f"encryption.{section}.{name}: {exc}") from None
        return keys

    master = read("master_keys", settings.master_keys)
    if not master and settings.metadata_engine == "sqlite":
        master = {LOCAL_KEY_ID: local_key(str(Path(settings.sqlite_path).absolute().parent))}
    return KeyRing(master, settings.active_master_key or None, read("kms_keys", settings.kms_keys))
