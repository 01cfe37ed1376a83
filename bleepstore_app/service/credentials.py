"""Credentials: who may sign requests, managed at run time (the admin API and
``bleepstore admin``) as well as seeded from the YAML.

Stored secrets are sealed (crypto/secrets.py); this module seals and opens them.
Every node reads the same rows, and a worker reuses a lookup for at most
``auth.cache_seconds``: that is how long a change takes to reach the whole cluster.
"""
from __future__ import annotations

import logging
import re
import secrets as _random
from dataclasses import dataclass
from datetime import datetime, timezone

from ..config import default_owner_id
from ..metadata.credentials import BucketsNotEmpty, CredentialRow, OwnerHasBuckets, UnknownOwner
from ..metadata.records import CredentialRecord

log = logging.getLogger("bleepstore.credentials")

_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_OWNER_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
MAX_TEXT = 256


class AdminError(Exception):
    """A refused admin request: HTTP status, a short code and a message."""
    status, code = 400, "BadRequest"

    def __init__(self, message: str, **extra) -> None:
        super().__init__(message)
        self.message, self.extra = message, extra


class BadRequest(AdminError):
    pass


class NotFound(AdminError):
    status, code = 404, "NotFound"


class Conflict(AdminError):
    status, code = 409, "Conflict"


def rfc3339(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def lookup(services, access_key: str) -> CredentialRecord | None:
    """The active credential with its secret opened (None: unknown or disabled)."""
    row = services.meta.active_credential(access_key)
    if row is None:
        return None
    if row.sealed is not None:
        try:
            secret = services.secrets.open(row.access_key, row.sealed)
        except Exception as exc:  # SecretUnavailable: this node lacks the key the others use
            log.warning("credential %s refused: %s (every node needs the same auth.secret_encryption_key "
                        "or encryption.master_keys)", row.access_key, exc)
            return None
    elif row.secret_key is not None:
        secret = row.secret_key  # written before 0007 and not yet sealed by a start-up
    else:
        return None
    return CredentialRecord(row.access_key, secret, row.owner_id, row.display_name)


def seed_configured(services) -> None:
    """Upsert the YAML's credentials, their secrets sealed."""
    box = services.secrets
    services.meta.seed_sealed_credentials(
        dict(access_key=c.access_key, sealed=box.seal(c.access_key, c.secret_key), owner_id=c.owner_id,
             display_name=c.display_name) for c in services.settings.credentials)


def seal_all(services) -> tuple[int, int]:
    """Seal rows still in clear and re-seal rows under an older key, one row per
    statement; (re-sealed, left) where left are rows under a key this server
    does not hold (logged; they do not authenticate here)."""
    box, done, left = services.secrets, 0, 0
    for row in services.meta.all_credentials():
        if box.is_current(row.sealed):
            continue
        try:
            plain = row.secret_key if row.sealed is None else box.open(row.access_key, row.sealed)
        except Exception as exc:  # SecretUnavailable: a key that is not configured here
            log.warning("credential %s: %s", row.access_key, exc)
            left += 1
            continue
        if plain is not None and services.meta.reseal_credential(row, box.seal(row.access_key, plain)):
            done += 1
    return done, left


def view(row: CredentialRow) -> dict:
    """A credential as the admin API shows it: never its secret."""
    return {"access_key_id": row.access_key, "status": "active" if row.active else "disabled",
            "created_at": rfc3339(row.created_at), "owner_id": row.owner_id, "display_name": row.display_name,
            "description": row.description, "source": row.source}


def list_credentials(services) -> list[dict]:
    return [view(row) for row in services.meta.all_credentials()]


def get_credential(services, access_key: str) -> dict:
    return view(_existing(services, access_key))


def _text(value, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT or not value.isprintable():
        raise BadRequest(f"{name}: expected printable text of at most {MAX_TEXT} characters")
    return value


def create_credential(services, description=None, owner_id=None, display_name=None) -> dict:
    """A new active key with a generated secret; the only answer that holds it."""
    description, display_name = _text(description, "description"), _text(display_name, "display_name")
    if owner_id is not None and (not isinstance(owner_id, str) or not _OWNER_ID.fullmatch(owner_id)):
        raise BadRequest("owner_id: expected 1 to 128 letters, digits, '-' or '_'")
    for _ in range(5):
        access_key = "BK" + "".join(_random.choice(_KEY_ALPHABET) for _ in range(18))
        secret = _random.token_urlsafe(30)  # 40 characters, 240 bits
        owner = owner_id or default_owner_id(access_key)
        name = display_name or services.meta.owner_display_name(owner) or access_key
        if services.meta.insert_credential(access_key, services.secrets.seal(access_key, secret), owner, name,
                                           description):
            return dict(view(_existing(services, access_key)), secret_access_key=secret)
    raise Conflict("could not pick an unused access key")  # 32^18 keys: never in practice


def set_status(services, access_key: str, status) -> dict:
    if status not in ("active", "disabled"):
        raise BadRequest('status: expected "active" or "disabled"')
    if not services.meta.set_credential_active(access_key, status == "active"):
        raise NotFound(f"no credential {access_key}")
    return get_credential(services, access_key)


def _configured(services, access_key: str) -> bool:
    return any(c.access_key == access_key for c in services.settings.credentials)


def rotate(services, access_key: str) -> dict:
    """A new secret for the key (the old one stops working at once on this
    worker, within auth.cache_seconds elsewhere); shown this once."""
    _existing(services, access_key)
    if _configured(services, access_key):
        raise Conflict(f"{access_key} is set in the configuration (auth.*), which would restore its secret "
                       f"at the next start: change it there")
    secret = _random.token_urlsafe(30)
    if not services.meta.set_credential_sealed(access_key, services.secrets.seal(access_key, secret)):
        raise NotFound(f"no credential {access_key}")
    return dict(get_credential(services, access_key), secret_access_key=secret)


def delete(services, access_key: str, transfer_to: str | None = None, delete_buckets: bool = False) -> None:
    if _configured(services, access_key):
        raise Conflict(f"{access_key} is set in the configuration (auth.*) and would come back at the next "
                       f"start: remove it there first, or disable it")
    try:
        if not services.meta.delete_credential(access_key, transfer_to, delete_buckets):
            raise NotFound(f"no credential {access_key}")
    except BucketsNotEmpty as exc:
        raise Conflict("these buckets still hold objects or versions; empty them first: "
                       + ", ".join(exc.buckets), buckets=exc.buckets) from None
    except OwnerHasBuckets as exc:
        raise Conflict("this is the last key of an owner of buckets: pass transfer_to=<owner_id> or "
                       "delete_buckets=true (empty buckets only)", buckets=exc.buckets) from None
    except UnknownOwner:
        raise BadRequest(f"transfer_to: {transfer_to!r} is not the owner_id of another credential") from None


def _existing(services, access_key: str) -> CredentialRow:
    row = services.meta.credential(access_key)
    if row is None:
        raise NotFound(f"no credential {access_key}")
    return row


@dataclass(frozen=True)
class BucketStats:
    name: str
    owner_id: str
    created_at: str
    objects: int
    bytes: int
    noncurrent_versions: int
    noncurrent_bytes: int


def storage_stats(services) -> dict:
    per_bucket = [BucketStats(n, owner, rfc3339(created), *counts).__dict__
                  for n, owner, created, *counts in services.meta.storage_stats()]
    return {"buckets": len(per_bucket), "objects": sum(b["objects"] for b in per_bucket),
            "bytes": sum(b["bytes"] for b in per_bucket),
            "noncurrent_versions": sum(b["noncurrent_versions"] for b in per_bucket),
            "noncurrent_bytes": sum(b["noncurrent_bytes"] for b in per_bucket),
            "per_bucket": per_bucket}
