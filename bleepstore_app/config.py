"""Settings: defaults -> YAML file -> BLEEPSTORE_* environment -> overrides.

Every key has a default in ``DEFAULTS``; the environment variable for a key is
``BLEEPSTORE_`` + its dotted path upper-cased with ``_`` for dots (for example
``metadata.sqlite.path`` -> ``BLEEPSTORE_METADATA_SQLITE_PATH``). Environment values
are parsed as YAML scalars (``true``, ``9010``, ``[a, b]``). Validation happens once,
at load time; a bad value raises ``ConfigError`` with one line naming the key.
No Flask here.
"""
from __future__ import annotations

import copy
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

CONFIG_ENV = "BLEEPSTORE_CONFIG"
ENV_PREFIX = "BLEEPSTORE_"

DEFAULTS: dict[str, Any] = {
    "server": {
        "host": "0.0.0.0",
        "port": 9010,
        "region": "us-east-1",
        "workers": 2,
        # Domains for virtual-hosted-style addressing: <bucket>.<domain>.
        "virtual_host_domains": ["s3.localhost"],
        # The URL clients use (behind a proxy: e.g. https://s3.example.com), for the
        # absolute URLs the server writes (CompleteMultipartUpload's Location).
        # Empty: taken from each request's scheme and Host.
        "public_url": "",
        "max_object_size": 5 * 1024**3,
        "log_level": "info",
        # "text" (key=value) or "json" (one JSON object per line), for every log line.
        "log_format": "text",
        # One line per request on the bleepstore.access logger.
        "access_log": True,
    },
    "auth": {
        "access_key": "bleepstore",
        "secret_key": "bleepstore-secret",
        "owner_id": "",
        "display_name": "bleepstore",
        "credentials": [],
        # How long a worker may reuse a credential looked up in the database: also
        # how long an admin change (a disabled or deleted key) takes to reach every node.
        "cache_seconds": 5,
        # The key that encrypts stored secret keys: env:NAME or file:/path (base64
        # of 32 bytes), the same on every node. Empty: derived from the active SSE
        # master key, else made once under storage.local.root_dir (crypto/secrets.py).
        "secret_encryption_key": "",
    },
    # The admin API (/admin/...) and `bleepstore admin`: off while no token is set.
    "admin": {
        # The bearer token (at least 16 characters); BLEEPSTORE_ADMIN_TOKEN.
        "token": "",
        # Wrong or missing tokens from one client address, per worker, within the
        # window, after which that address gets 429 until the window has passed.
        "max_failures": 10,
        "failure_window_seconds": 60,
    },
    "metadata": {
        "engine": "sqlite",
        "migrate_on_start": True,
        "sqlite": {"path": "./data/metadata.db", "synchronous": "FULL"},
        "postgresql": {"url": "", "pool_size": 10, "max_overflow": 40},
    },
    "multipart": {
        # Unfinished uploads older than this are aborted and their parts deleted.
        "upload_lifetime_seconds": 7 * 24 * 3600,
        # How often each worker looks for expired uploads (0: only at start-up).
        "reap_interval_seconds": 3600,
    },
    "storage": {
        "backend": "local",
        # Objects up to this size live in the metadata database (one commit holds
        # bytes and metadata); 0 turns inlining off.
        "inline_max_size": 16 * 1024,
        # A blob that a committed write unlinked (a replaced or deleted object, a
        # dropped part) stays readable this long for readers that already chose it,
        # then the sweeper deletes it. Longer than the longest read you expect.
        "garbage_grace_seconds": 3600,
        # How often a worker offers to run the sweeper (one node of a cluster does
        # at a time, under a lease in the database); it also runs at start-up.
        "sweep_interval_seconds": 60,
        # Start-up removes blobs no row points at, if older than this: younger ones
        # may belong to a write in another live process, between rename and commit.
        "orphan_min_age_seconds": 300,
        "local": {"root_dir": "./data/objects", "fsync": True},
        # Gateway backends: bytes in a cloud bucket under ``prefix``. Credentials
        # come from each SDK's standard chain; none is required here.
        "aws": {"bucket": "", "region": "us-east-1", "prefix": "", "endpoint_url": "",
                "path_style": False, "part_size": 8 * 1024**2, "max_pool_connections": 64},
        "gcp": {"bucket": "", "project": "", "prefix": "", "endpoint": "",
                "chunk_size": 8 * 1024**2, "max_pool_connections": 64},
        "azure": {"container": "", "account_url": "", "prefix": "", "connection_string": "",
                  "account_key": "", "sas_token": "", "block_size": 8 * 1024**2, "max_pool_connections": 64},
    },
    "buckets": {
        # The object ownership of a new bucket that names none (x-amz-object-ownership):
        # ObjectWriter (classic ACLs, the default here so ACL clients keep working),
        # BucketOwnerPreferred, or BucketOwnerEnforced (ACLs disabled, as AWS creates
        # buckets since 2023).
        "default_object_ownership": "ObjectWriter",
    },
    # Bucket lifecycle rules (PutBucketLifecycleConfiguration), run by a background pass.
    "lifecycle": {
        # How often each worker offers to run the pass (one node of a cluster runs
        # it at a time, under a lease); 0 turns the runner off.
        "interval_seconds": 3600,
        # The length of a lifecycle "day". Shorter days are for tests and demos (the
        # ceph s3-tests convention is 10); then expiry is not rounded to midnight UTC.
        "day_seconds": 86400,
        # Rows per batch of the pass: between batches it renews its lease and records
        # where it is (smaller: shorter transactions, more bookkeeping).
        "batch_size": 1000,
    },
    # Server-side encryption (SSE-S3, SSE-KMS, SSE-C). Keys are sources, never
    # values: "env:NAME" (base64 of 32 bytes in that variable) or "file:/path".
    "encryption": {
        # id -> source: the keys that wrap SSE-S3 data keys. Empty on SQLite: a key
        # is made on first start in sse-master.key next to the database.
        "master_keys": {},
        # The id that wraps new data keys (default: the only one).
        "active_master_key": "",
        # name -> source: the local key ring that SSE-KMS key ids name (aws:kms
        # without a key id, or alias/aws/s3, uses the master keys).
        "kms_keys": {},
    },
}

ENGINES = ("sqlite", "postgresql")
BACKENDS = ("local", "aws", "gcp", "azure")
GATEWAY_PART_MIN = 5 * 1024**2
SYNCHRONOUS = ("FULL", "NORMAL")
LOG_LEVELS = ("debug", "info", "warning", "error")
OBJECT_OWNERSHIP = ("ObjectWriter", "BucketOwnerPreferred", "BucketOwnerEnforced")


# Settings whose value is a mapping chosen by the user (ids to key sources), not a
# section of fixed keys.
FREE_MAPPINGS = frozenset({"encryption.master_keys", "encryption.kms_keys"})


class ConfigError(ValueError):
    """A setting is missing or has a value that is not allowed."""


@dataclass(frozen=True)
class Credential:
    access_key: str
    secret_key: str
    owner_id: str
    display_name: str


@dataclass(frozen=True)
class AwsSettings:
    bucket: str
    region: str
    prefix: str
    endpoint_url: str
    path_style: bool
    part_size: int
    max_pool_connections: int


@dataclass(frozen=True)
class GcpSettings:
    bucket: str
    project: str
    prefix: str
    endpoint: str
    chunk_size: int
    max_pool_connections: int


@dataclass(frozen=True)
class AzureSettings:
    container: str
    account_url: str
    prefix: str
    connection_string: str
    account_key: str
    sas_token: str
    block_size: int
    max_pool_connections: int


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    region: str
    workers: int
    virtual_host_domains: tuple[str, ...]
    public_url: str
    max_object_size: int
    log_level: str
    log_format: str
    access_log: bool
    credentials: tuple[Credential, ...]
    credential_cache_seconds: float
    metadata_engine: str
    migrate_on_start: bool
    sqlite_path: str
    sqlite_synchronous: str
    postgresql_url: str
    postgresql_pool_size: int
    postgresql_max_overflow: int
    upload_lifetime_seconds: int
    reap_interval_seconds: int
    storage_backend: str
    inline_max_size: int
    garbage_grace_seconds: int
    sweep_interval_seconds: int
    orphan_min_age_seconds: int
    local_root_dir: str
    local_fsync: bool
    secret_encryption_key: str = ""
    admin_token: str = ""
    admin_max_failures: int = 10
    admin_failure_window_seconds: int = 60
    default_object_ownership: str = "ObjectWriter"
    lifecycle_interval_seconds: int = 3600
    lifecycle_day_seconds: int = 86400
    lifecycle_batch_size: int = 1000
    # Encryption: (id, source) pairs; sources are read by crypto.keys at start.
    master_keys: tuple[tuple[str, str], ...] = ()
    active_master_key: str = ""
    kms_keys: tuple[tuple[str, str], ...] = ()
    # The chosen gateway backend's settings (None for local).
    gateway: AwsSettings | GcpSettings | AzureSettings | None = None
    source: str = field(default="defaults", compare=False)

    @property
    def database_url(self) -> str:
        if self.metadata_engine == "sqlite":
            return "sqlite:///" + str(Path(self.sqlite_path).absolute())
        return self.postgresql_url


def default_owner_id(access_key: str) -> str:
    """A stable 64-hex canonical user id, shaped like AWS's, for a credential."""
    return hashlib.sha256(("bleepstore-owner:" + access_key).encode()).hexdigest()


def load_settings(path: str | None = None, overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Build validated settings; ``path`` defaults to $BLEEPSTORE_CONFIG."""
    environ = os.environ if environ is None else environ
    tree = copy.deepcopy(DEFAULTS)
    path = path or environ.get(CONFIG_ENV) or None
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                loaded = yaml.safe_load(f) or {}
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path}: not valid YAML ({exc})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file {path}: not UTF-8 text") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: expected a mapping of sections")
        _merge(tree, loaded, "")
    _apply_environ(tree, environ, DEFAULTS, "")
    for dotted, value in (overrides or {}).items():
        _set_dotted(tree, dotted, value)
    settings = _validate(tree)
    return settings if not path else _with_source(settings, path)


def _with_source(settings: Settings, source: str) -> Settings:
    from dataclasses import replace
    return replace(settings, source=source)


def _merge(into: dict, loaded: Mapping, prefix: str) -> None:
    for key, value in loaded.items():
        dotted = f"{prefix}{key}"
        if key not in into:
            raise ConfigError(f"{dotted}: unknown setting")
        if isinstance(into[key], dict) and dotted not in FREE_MAPPINGS:
            if not isinstance(value, dict):
                raise ConfigError(f"{dotted}: expected a mapping")
            _merge(into[key], value, dotted + ".")
        else:
            into[key] = value


def _apply_environ(tree: dict, environ: Mapping[str, str], defaults: dict, prefix: str) -> None:
    for key, default in defaults.items():
        dotted = f"{prefix}{key}"
        if isinstance(default, dict) and dotted not in FREE_MAPPINGS:
            _apply_environ(tree[key], environ, default, dotted + ".")
            continue
        name = ENV_PREFIX + dotted.replace(".", "_").upper()
        if name in environ:
            raw = environ[name]
            if isinstance(default, str):
                tree[key] = raw  # text settings (secrets like "123" or "null") as written
                continue
            try:
                tree[key] = yaml.safe_load(raw) if raw.strip() else ""
            except yaml.YAMLError:
                tree[key] = raw


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    node = tree
    *parents, last = dotted.split(".")
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"{dotted}: unknown setting")
        node = node[part]
    if last not in node:
        raise ConfigError(f"{dotted}: unknown setting")
    if isinstance(node[last], dict) and dotted not in FREE_MAPPINGS:
        raise ConfigError(f"{dotted}: is a section; override its keys one by one (e.g. {dotted}.<key>)")
    node[last] = value


def _require(cond: bool, key: str, allowed: str, value: Any) -> None:
    if not cond:
        raise ConfigError(f"{key}: {value!r} is not allowed; expected {allowed}")


def _int(tree: dict, key: str, low: int, high: int | None = None) -> int:
    value = _lookup(tree, key)
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    ok = ok and (high is None or value <= high)
    _require(ok, key, f"an integer >= {low}" + (f" and <= {high}" if high is not None else ""), value)
    return value


def _str(tree: dict, key: str, choices: tuple[str, ...] | None = None, empty_ok: bool = False) -> str:
    value = _lookup(tree, key)
    if choices:
        if isinstance(value, str):
            value = value.upper() if choices[0].isupper() else value.lower()
        _require(value in choices, key, "one of " + ", ".join(choices), value)
        return value
    _require(isinstance(value, str) and (empty_ok or value != ""), key, "a non-empty string", value)
    return value


def _bool(tree: dict, key: str) -> bool:
    value = _lookup(tree, key)
    _require(isinstance(value, bool), key, "true or false", value)
    return value


def _lookup(tree: dict, dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        node = node[part]
    return node


def _credentials(tree: dict) -> tuple[Credential, ...]:
    auth = tree["auth"]
    first = Credential(
        access_key=_str(tree, "auth.access_key"),
        secret_key=_str(tree, "auth.secret_key"),
        owner_id=_str(tree, "auth.owner_id", empty_ok=True) or default_owner_id(auth["access_key"]),
        display_name=_str(tree, "auth.display_name", empty_ok=True) or auth["access_key"],
    )
    found = [first]
    extra = auth["credentials"]
    _require(isinstance(extra, list), "auth.credentials", "a list of {access_key, secret_key, owner_id, display_name}", extra)
    for i, item in enumerate(extra):
        key = f"auth.credentials[{i}]"
        _require(isinstance(item, dict), key, "a mapping", item)
        unknown = set(item) - {"access_key", "secret_key", "owner_id", "display_name"}
        if unknown:
            raise ConfigError(f"{key}.{sorted(unknown)[0]}: unknown setting")
        for name in ("access_key", "secret_key"):
            _require(isinstance(item.get(name), str) and item[name] != "", f"{key}.{name}", "a non-empty string", item.get(name))
        found.append(Credential(
            access_key=item["access_key"],
            secret_key=item["secret_key"],
            owner_id=str(item.get("owner_id") or default_owner_id(item["access_key"])),
            display_name=str(item.get("display_name") or item["access_key"]),
        ))
    seen: set[str] = set()
    for cred in found:
        if cred.access_key in seen:
            raise ConfigError(f"auth.credentials: access_key {cred.access_key!r} appears twice")
        seen.add(cred.access_key)
    return tuple(found)


def _public_url(value) -> str:
    from urllib.parse import urlsplit
    if value in (None, ""):
        return ""
    ok = isinstance(value, str) and urlsplit(value).scheme in ("http", "https") and urlsplit(value).netloc
    _require(bool(ok), "server.public_url", "an http(s) URL such as https://s3.example.com", value)
    return value.rstrip("/")


def _validate(tree: dict) -> Settings:
    engine = _str(tree, "metadata.engine", ENGINES)
    pg_url = _lookup(tree, "metadata.postgresql.url") or ""
    if engine == "postgresql":
        _require(isinstance(pg_url, str) and pg_url.startswith(("postgresql", "postgres://")), "metadata.postgresql.url",
                 "a URL like postgresql+psycopg://user@host:5432/db", pg_url)
        if pg_url.startswith("postgresql://") or pg_url.startswith("postgres://"):
            pg_url = "postgresql+psycopg://" + pg_url.split("://", 1)[1]
    domains = _lookup(tree, "server.virtual_host_domains")
    if isinstance(domains, str):
        domains = [d.strip() for d in domains.split(",") if d.strip()]
    _require(isinstance(domains, list) and all(isinstance(d, str) for d in domains),
             "server.virtual_host_domains", "a list of domain names", domains)
    return Settings(
        host=_str(tree, "server.host"),
        port=_int(tree, "server.port", 0, 65535),
        region=_str(tree, "server.region"),
        workers=_int(tree, "server.workers", 1, 256),
        virtual_host_domains=tuple(d.lower().strip(".") for d in domains),
        public_url=_public_url(_lookup(tree, "server.public_url")),
        max_object_size=_int(tree, "server.max_object_size", 0),
        log_level=_str(tree, "server.log_level", LOG_LEVELS),
        log_format=_str(tree, "server.log_format", ("text", "json")),
        access_log=_bool(tree, "server.access_log"),
        credentials=_credentials(tree),
        credential_cache_seconds=_int(tree, "auth.cache_seconds", 0, 3600),
        metadata_engine=engine,
        migrate_on_start=_bool(tree, "metadata.migrate_on_start"),
        sqlite_path=_str(tree, "metadata.sqlite.path"),
        sqlite_synchronous=_str(tree, "metadata.sqlite.synchronous", SYNCHRONOUS),
        postgresql_url=pg_url,
        postgresql_pool_size=_int(tree, "metadata.postgresql.pool_size", 1),
        postgresql_max_overflow=_int(tree, "metadata.postgresql.max_overflow", 0),
        upload_lifetime_seconds=_int(tree, "multipart.upload_lifetime_seconds", 0),
        reap_interval_seconds=_int(tree, "multipart.reap_interval_seconds", 0),
        storage_backend=_str(tree, "storage.backend", BACKENDS),
        inline_max_size=_int(tree, "storage.inline_max_size", 0, 1024 * 1024),
        garbage_grace_seconds=_int(tree, "storage.garbage_grace_seconds", 0),
        sweep_interval_seconds=_int(tree, "storage.sweep_interval_seconds", 0),
        orphan_min_age_seconds=_int(tree, "storage.orphan_min_age_seconds", 0),
        local_root_dir=_str(tree, "storage.local.root_dir"),
        local_fsync=_bool(tree, "storage.local.fsync"),
        secret_encryption_key=_key_source(tree, "auth.secret_encryption_key"),
        admin_token=_admin_token(tree),
        admin_max_failures=_int(tree, "admin.max_failures", 1, 1_000_000),
        admin_failure_window_seconds=_int(tree, "admin.failure_window_seconds", 1, 86400),
        default_object_ownership=_object_ownership(tree),
        lifecycle_interval_seconds=_int(tree, "lifecycle.interval_seconds", 0),
        lifecycle_day_seconds=_int(tree, "lifecycle.day_seconds", 1),
        lifecycle_batch_size=_int(tree, "lifecycle.batch_size", 1, 100_000),
        gateway=_gateway(tree),
        master_keys=_key_sources(tree, "encryption.master_keys"),
        active_master_key=_active_master_key(tree),
        kms_keys=_key_sources(tree, "encryption.kms_keys"),
    )


def _object_ownership(tree: dict) -> str:
    value = _str(tree, "buckets.default_object_ownership")  # spelled as S3 spells it
    _require(value in OBJECT_OWNERSHIP, "buckets.default_object_ownership", "one of " + ", ".join(OBJECT_OWNERSHIP),
             value)
    return value


def _key_sources(tree: dict, key: str) -> tuple[tuple[str, str], ...]:
    value = _lookup(tree, key)
    if value in (None, ""):
        return ()
    _require(isinstance(value, dict), key, "a mapping of key id to env:NAME or file:/path", value)
    for name, source in value.items():
        _require(isinstance(name, str) and 0 < len(name) <= 64 and name.replace("-", "").replace("_", "")
                 .replace("/", "").isalnum(), f"{key}.{name}", "an id of letters, digits, - _ /", name)
        _require(isinstance(source, str) and source.startswith(("env:", "file:")), f"{key}.{name}",
                 "env:NAME or file:/path (a key is never written in the YAML)", "<hidden>")
    return tuple(sorted(value.items()))


def _key_source(tree: dict, key: str) -> str:
    value = _str(tree, key, empty_ok=True)
    _require(value == "" or value.startswith(("env:", "file:")), key,
             "env:NAME or file:/path (a key is never written in the YAML)", "<hidden>")
    return value


def _admin_token(tree: dict) -> str:
    value = _lookup(tree, "admin.token")
    if value in (None, ""):
        return ""
    ok = isinstance(value, str) and len(value) >= 16 and value.isprintable() and " " not in value
    _require(ok, "admin.token", "at least 16 printable characters without spaces (e.g. openssl rand -hex 32)",
             "<hidden>")
    return value


def _active_master_key(tree: dict) -> str:
    active = _str(tree, "encryption.active_master_key", empty_ok=True)
    ids = [name for name, _ in _key_sources(tree, "encryption.master_keys")]
    _require(active == "" or active in ids, "encryption.active_master_key", "one of encryption.master_keys", active)
    _require(active != "" or len(ids) <= 1, "encryption.active_master_key",
             "the id of the key that wraps new data keys (several master keys are configured)", active)
    return active


def _prefix(tree: dict, key: str) -> str:
    value = _str(tree, key, empty_ok=True)
    _require(not value.startswith("/"), key, "a key prefix without a leading slash (e.g. bleepstore/)", value)
    return value


def _gateway(tree: dict) -> AwsSettings | GcpSettings | AzureSettings | None:
    """The gateway settings of the chosen backend, with its required keys checked."""
    backend = _str(tree, "storage.backend", BACKENDS)
    if backend == "aws":
        return AwsSettings(
            bucket=_str(tree, "storage.aws.bucket"), region=_str(tree, "storage.aws.region"),
            prefix=_prefix(tree, "storage.aws.prefix"), endpoint_url=_str(tree, "storage.aws.endpoint_url", empty_ok=True),
            path_style=_bool(tree, "storage.aws.path_style"),
            part_size=_int(tree, "storage.aws.part_size", GATEWAY_PART_MIN, 5 * 1024**3),
            max_pool_connections=_int(tree, "storage.aws.max_pool_connections", 1))
    if backend == "gcp":
        chunk = _int(tree, "storage.gcp.chunk_size", 256 * 1024)
        _require(chunk % (256 * 1024) == 0, "storage.gcp.chunk_size", "a multiple of 262144 (256 KiB)", chunk)
        return GcpSettings(
            bucket=_str(tree, "storage.gcp.bucket"), project=_str(tree, "storage.gcp.project", empty_ok=True),
            prefix=_prefix(tree, "storage.gcp.prefix"), endpoint=_str(tree, "storage.gcp.endpoint", empty_ok=True),
            chunk_size=chunk, max_pool_connections=_int(tree, "storage.gcp.max_pool_connections", 1))
    if backend == "azure":
        settings = AzureSettings(
            container=_str(tree, "storage.azure.container"),
            account_url=_str(tree, "storage.azure.account_url", empty_ok=True),
            prefix=_prefix(tree, "storage.azure.prefix"),
            connection_string=_str(tree, "storage.azure.connection_string", empty_ok=True),
            account_key=_str(tree, "storage.azure.account_key", empty_ok=True),
            sas_token=_str(tree, "storage.azure.sas_token", empty_ok=True),
            block_size=_int(tree, "storage.azure.block_size", 1024 * 1024, 4000 * 1024**2),
            max_pool_connections=_int(tree, "storage.azure.max_pool_connections", 1))
        _require(bool(settings.connection_string or settings.account_url), "storage.azure.account_url",
                 "an account URL such as https://<account>.blob.core.windows.net (or a connection_string)", "")
        return settings
    return None
