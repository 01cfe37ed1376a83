"""Unit tests for bleepstore_app.config: defaults -> YAML -> BLEEPSTORE_* env -> overrides."""
from __future__ import annotations

from pathlib import Path

import pytest

from bleepstore_app.config import ConfigError, Credential, default_owner_id, load_settings


def load(path=None, overrides=None, **env):
    return load_settings(path=path, overrides=overrides, environ=env)


def write(tmp_path: Path, text: str, name: str = "bleepstore.yaml") -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


# --- defaults ----------------------------------------------------------------------------

def test_load_settings_defaults():
    s = load()
    assert s.host == "0.0.0.0"
    assert s.port == 9010
    assert s.region == "us-east-1"
    assert s.workers == 2
    assert s.virtual_host_domains == ("s3.localhost",)
    assert s.max_object_size == 5 * 1024**3
    assert s.log_level == "info"
    assert s.credentials == (Credential("bleepstore", "bleepstore-secret", default_owner_id("bleepstore"),
                                        "bleepstore"),)
    assert s.credential_cache_seconds == 5
    assert s.metadata_engine == "sqlite"
    assert s.migrate_on_start is True
    assert s.sqlite_path == "./data/metadata.db"
    assert s.sqlite_synchronous == "FULL"
    assert s.postgresql_url == ""
    assert s.postgresql_pool_size == 10
    assert s.postgresql_max_overflow == 40
    assert s.storage_backend == "local"
    assert s.inline_max_size == 16 * 1024
    assert s.local_root_dir == "./data/objects"
    assert s.local_fsync is True
    assert s.source == "defaults"


def test_default_owner_id_shape_and_stability():
    owner = default_owner_id("bleepstore")
    assert len(owner) == 64 and all(c in "0123456789abcdef" for c in owner)
    assert owner == default_owner_id("bleepstore")
    assert owner != default_owner_id("other")


def test_database_url_sqlite_is_absolute(tmp_path):
    s = load(overrides={"metadata.sqlite.path": "rel/m.db"})
    assert s.database_url == "sqlite:///" + str(Path("rel/m.db").absolute())
    s = load(overrides={"metadata.sqlite.path": str(tmp_path / "m.db")})
    assert s.database_url == f"sqlite:///{tmp_path / 'm.db'}"


def test_load_settings_does_not_mutate_defaults():
    load(overrides={"server.port": 1234, "server.virtual_host_domains": ["x.test"]})
    assert load().port == 9010
    assert load().virtual_host_domains == ("s3.localhost",)


# --- YAML file ----------------------------------------------------------------------------

def test_load_settings_yaml_file(tmp_path):
    path = write(tmp_path, """
server:
  port: 9100
  region: eu-west-1
  virtual_host_domains: [S3.Example.COM., s3.local]
  log_level: DEBUG
auth:
  access_key: admin
  secret_key: "12345"
  credentials:
    - {access_key: alice, secret_key: alice-secret, display_name: Alice}
    - {access_key: bob, secret_key: bob-secret, owner_id: bob-owner}
metadata:
  sqlite:
    path: /tmp/x.db
    synchronous: normal
storage:
  inline_max_size: 0
  local:
    fsync: false
""")
    s = load(path)
    assert s.port == 9100
    assert s.region == "eu-west-1"
    assert s.virtual_host_domains == ("s3.example.com", "s3.local")
    assert s.log_level == "debug"
    assert [c.access_key for c in s.credentials] == ["admin", "alice", "bob"]
    assert s.credentials[0].secret_key == "12345"
    assert s.credentials[0].display_name == "bleepstore"  # the default display_name, not the key
    assert s.credentials[1] == Credential("alice", "alice-secret", default_owner_id("alice"), "Alice")
    assert s.credentials[2] == Credential("bob", "bob-secret", "bob-owner", "bob")
    assert s.sqlite_path == "/tmp/x.db"
    assert s.sqlite_synchronous == "NORMAL"
    assert s.inline_max_size == 0
    assert s.local_fsync is False
    assert s.workers == 2  # untouched defaults remain
    assert s.source == path


def test_load_settings_config_from_environment_variable(tmp_path):
    path = write(tmp_path, "server:\n  port: 9200\n")
    s = load_settings(environ={"BLEEPSTORE_CONFIG": path})
    assert s.port == 9200
    assert s.source == path


def test_load_settings_explicit_path_beats_environment_variable(tmp_path):
    a = write(tmp_path, "server:\n  port: 1111\n", "a.yaml")
    b = write(tmp_path, "server:\n  port: 2222\n", "b.yaml")
    assert load_settings(path=a, environ={"BLEEPSTORE_CONFIG": b}).port == 1111


def test_load_settings_empty_yaml_file(tmp_path):
    assert load(write(tmp_path, "")).port == 9010


@pytest.mark.parametrize("text, key", [
    ("server:\n  prot: 1\n", "server.prot"),
    ("serve:\n  port: 1\n", "serve"),
    ("metadata:\n  sqlite:\n    pth: x\n", "metadata.sqlite.pth"),
    ("server: 5\n", "server"),
    ("metadata:\n  sqlite: x.db\n", "metadata.sqlite"),
    ("server:\n  port: [1]\n", "server.port"),
    ("server:\n  port: true\n", "server.port"),
    ("server:\n  port: '9010'\n", "server.port"),
    ("metadata:\n  engine: mysql\n", "metadata.engine"),
    ("storage:\n  local:\n    fsync: 'yes please'\n", "storage.local.fsync"),
    ("auth:\n  credentials: {access_key: a}\n", "auth.credentials"),
    ("auth:\n  credentials:\n    - just-a-string\n", "auth.credentials[0]"),
    ("auth:\n  credentials:\n    - {access_key: a, secret_key: b, colour: red}\n", "auth.credentials[0].colour"),
    ("auth:\n  credentials:\n    - {access_key: a}\n", "auth.credentials[0].secret_key"),
    ("auth:\n  credentials:\n    - {access_key: '', secret_key: b}\n", "auth.credentials[0].access_key"),
    ("auth:\n  credentials:\n    - {access_key: bleepstore, secret_key: b}\n", "auth.credentials"),
])
def test_load_settings_yaml_bad_value_names_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as exc:
        load(write(tmp_path, text))
    assert str(exc.value).startswith(f"{key}:"), str(exc.value)


def test_load_settings_yaml_duplicate_access_key_message(tmp_path):
    path = write(tmp_path, "auth:\n  credentials:\n    - {access_key: x, secret_key: s1}\n"
                           "    - {access_key: x, secret_key: s2}\n")
    with pytest.raises(ConfigError) as exc:
        load(path)
    assert str(exc.value) == "auth.credentials: access_key 'x' appears twice"


def test_load_settings_missing_file(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError) as exc:
        load(missing)
    assert str(exc.value).startswith(f"config file {missing}:")


def test_load_settings_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load(write(tmp_path, "server: [unclosed\n"))
    assert "not valid YAML" in str(exc.value)


def test_load_settings_yaml_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load(write(tmp_path, "- a\n- b\n"))
    assert str(exc.value).endswith("expected a mapping of sections")


def test_load_settings_directory_as_config(tmp_path):
    with pytest.raises(ConfigError):
        load(str(tmp_path))


def test_load_settings_yaml_not_utf8(tmp_path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes(b"server:\n  host: \xff\xfe\n")
    with pytest.raises(ConfigError):
        load(str(p))


# --- environment --------------------------------------------------------------------------

def test_load_settings_env_overrides():
    s = load(BLEEPSTORE_SERVER_PORT="9020", BLEEPSTORE_SERVER_WORKERS="8",
             BLEEPSTORE_METADATA_SQLITE_PATH="/data/m.db", BLEEPSTORE_STORAGE_LOCAL_FSYNC="false",
             BLEEPSTORE_METADATA_MIGRATE_ON_START="no", BLEEPSTORE_SERVER_LOG_LEVEL="WARNING",
             BLEEPSTORE_AUTH_CACHE_SECONDS="0")
    assert s.port == 9020
    assert s.workers == 8
    assert s.sqlite_path == "/data/m.db"
    assert s.local_fsync is False
    assert s.migrate_on_start is False
    assert s.log_level == "warning"
    assert s.credential_cache_seconds == 0


def test_load_settings_env_numeric_secret_stays_string():
    s = load(BLEEPSTORE_AUTH_SECRET_KEY="123", BLEEPSTORE_AUTH_ACCESS_KEY="true")
    assert s.credentials[0].secret_key == "123"
    assert s.credentials[0].access_key == "true"


def test_load_settings_env_yaml_looking_secret_stays_raw():
    s = load(BLEEPSTORE_AUTH_SECRET_KEY="a: b", BLEEPSTORE_SERVER_REGION="[x")
    assert s.credentials[0].secret_key == "a: b"
    assert s.region == "[x"


@pytest.mark.parametrize("secret", ["null", "~", "#hash-start", "Null"])
def test_load_settings_env_null_like_secret_stays_string(secret):
    assert load(BLEEPSTORE_AUTH_SECRET_KEY=secret).credentials[0].secret_key == secret


def test_load_settings_env_domains_comma_list_and_yaml_list():
    assert load(BLEEPSTORE_SERVER_VIRTUAL_HOST_DOMAINS="a.test, B.test.").virtual_host_domains == ("a.test", "b.test")
    assert load(BLEEPSTORE_SERVER_VIRTUAL_HOST_DOMAINS="[x.test, y.test]").virtual_host_domains == ("x.test", "y.test")
    assert load(BLEEPSTORE_SERVER_VIRTUAL_HOST_DOMAINS="").virtual_host_domains == ()


def test_load_settings_env_credentials_yaml_list():
    s = load(BLEEPSTORE_AUTH_CREDENTIALS="[{access_key: k2, secret_key: s2}]")
    assert [c.access_key for c in s.credentials] == ["bleepstore", "k2"]


def test_load_settings_env_beats_yaml_and_overrides_beat_env(tmp_path):
    path = write(tmp_path, "server:\n  port: 1000\n  workers: 3\n  region: eu-west-1\n")
    s = load(path, overrides={"server.port": 3000}, BLEEPSTORE_SERVER_PORT="2000", BLEEPSTORE_SERVER_WORKERS="4")
    assert s.port == 3000
    assert s.workers == 4
    assert s.region == "eu-west-1"


def test_load_settings_env_unrelated_variables_ignored():
    s = load(BLEEPSTORE_UNKNOWN="x", BLEEPSTORE_SERVER="y", SERVER_PORT="1")
    assert s.port == 9010


@pytest.mark.parametrize("env, key", [
    ({"BLEEPSTORE_SERVER_PORT": "abc"}, "server.port"),
    ({"BLEEPSTORE_SERVER_PORT": "70000"}, "server.port"),
    ({"BLEEPSTORE_SERVER_PORT": "-1"}, "server.port"),
    ({"BLEEPSTORE_SERVER_PORT": ""}, "server.port"),
    ({"BLEEPSTORE_SERVER_PORT": "9010.5"}, "server.port"),
    ({"BLEEPSTORE_SERVER_WORKERS": "0"}, "server.workers"),
    ({"BLEEPSTORE_SERVER_WORKERS": "257"}, "server.workers"),
    ({"BLEEPSTORE_SERVER_LOG_LEVEL": "verbose"}, "server.log_level"),
    ({"BLEEPSTORE_SERVER_HOST": ""}, "server.host"),
    ({"BLEEPSTORE_SERVER_MAX_OBJECT_SIZE": "-5"}, "server.max_object_size"),
    ({"BLEEPSTORE_METADATA_ENGINE": "mysql"}, "metadata.engine"),
    ({"BLEEPSTORE_METADATA_MIGRATE_ON_START": "maybe"}, "metadata.migrate_on_start"),
    ({"BLEEPSTORE_METADATA_SQLITE_SYNCHRONOUS": "OFF"}, "metadata.sqlite.synchronous"),
    ({"BLEEPSTORE_STORAGE_BACKEND": "s3"}, "storage.backend"),
    ({"BLEEPSTORE_STORAGE_INLINE_MAX_SIZE": "1048577"}, "storage.inline_max_size"),
    ({"BLEEPSTORE_AUTH_CACHE_SECONDS": "3601"}, "auth.cache_seconds"),
    ({"BLEEPSTORE_AUTH_ACCESS_KEY": ""}, "auth.access_key"),
    ({"BLEEPSTORE_AUTH_CREDENTIALS": "not-a-list"}, "auth.credentials"),
    ({"BLEEPSTORE_SERVER_VIRTUAL_HOST_DOMAINS": "[1, 2]"}, "server.virtual_host_domains"),
])
def test_load_settings_env_bad_value_names_key(env, key):
    with pytest.raises(ConfigError) as exc:
        load_settings(environ=env)
    assert str(exc.value).startswith(f"{key}:"), str(exc.value)


# --- overrides ----------------------------------------------------------------------------

def test_load_settings_overrides():
    s = load(overrides={"server.port": 0, "metadata.sqlite.path": "/x/m.db", "storage.local.fsync": False,
                        "server.virtual_host_domains": ["A.test"], "metadata.sqlite.synchronous": "normal"})
    assert s.port == 0
    assert s.sqlite_path == "/x/m.db"
    assert s.local_fsync is False
    assert s.virtual_host_domains == ("a.test",)
    assert s.sqlite_synchronous == "NORMAL"


def test_load_settings_postgresql_url_normalised():
    s = load(overrides={"metadata.engine": "PostgreSQL", "metadata.postgresql.url": "postgresql://u:p@h:5432/db"})
    assert s.metadata_engine == "postgresql"
    assert s.postgresql_url == "postgresql+psycopg://u:p@h:5432/db"
    assert s.database_url == "postgresql+psycopg://u:p@h:5432/db"


def test_load_settings_postgresql_url_with_driver_kept():
    s = load(overrides={"metadata.engine": "postgresql", "metadata.postgresql.url": "postgresql+psycopg://h/db"})
    assert s.postgresql_url == "postgresql+psycopg://h/db"


def test_load_settings_postgres_scheme_accepted():
    s = load(overrides={"metadata.engine": "postgresql", "metadata.postgresql.url": "postgres://u@h/db"})
    assert s.postgresql_url == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize("overrides, message", [
    ({"metadata.engine": "mysql"}, "metadata.engine: 'mysql' is not allowed; expected one of sqlite, postgresql"),
    ({"metadata.engine": "MySQL"}, "metadata.engine: 'mysql' is not allowed; expected one of sqlite, postgresql"),
    ({"metadata.engine": 3}, "metadata.engine: 3 is not allowed; expected one of sqlite, postgresql"),
    ({"server.port": 65536}, "server.port: 65536 is not allowed; expected an integer >= 0 and <= 65535"),
    ({"server.port": True}, "server.port: True is not allowed; expected an integer >= 0 and <= 65535"),
    ({"server.port": "80"}, "server.port: '80' is not allowed; expected an integer >= 0 and <= 65535"),
    ({"server.workers": 0}, "server.workers: 0 is not allowed; expected an integer >= 1 and <= 256"),
    ({"server.max_object_size": -1}, "server.max_object_size: -1 is not allowed; expected an integer >= 0"),
    ({"server.region": ""}, "server.region: '' is not allowed; expected a non-empty string"),
    ({"server.log_level": "trace"},
     "server.log_level: 'trace' is not allowed; expected one of debug, info, warning, error"),
    ({"metadata.migrate_on_start": "true"}, "metadata.migrate_on_start: 'true' is not allowed; expected true or false"),
    ({"metadata.sqlite.path": ""}, "metadata.sqlite.path: '' is not allowed; expected a non-empty string"),
    ({"metadata.sqlite.synchronous": "off"},
     "metadata.sqlite.synchronous: 'OFF' is not allowed; expected one of FULL, NORMAL"),
    ({"metadata.postgresql.pool_size": 0},
     "metadata.postgresql.pool_size: 0 is not allowed; expected an integer >= 1"),
    ({"metadata.postgresql.max_overflow": -1},
     "metadata.postgresql.max_overflow: -1 is not allowed; expected an integer >= 0"),
    ({"metadata.engine": "postgresql"},
     "metadata.postgresql.url: '' is not allowed; expected a URL like postgresql+psycopg://user@host:5432/db"),
    ({"metadata.engine": "postgresql", "metadata.postgresql.url": "mysql://h/db"},
     "metadata.postgresql.url: 'mysql://h/db' is not allowed; expected a URL like "
     "postgresql+psycopg://user@host:5432/db"),
    ({"storage.backend": "s3"}, "storage.backend: 's3' is not allowed; expected one of local, aws, gcp, azure"),
    ({"storage.inline_max_size": 2 ** 20 + 1},
     "storage.inline_max_size: 1048577 is not allowed; expected an integer >= 0 and <= 1048576"),
    ({"storage.local.root_dir": None}, "storage.local.root_dir: None is not allowed; expected a non-empty string"),
    ({"storage.local.fsync": 1}, "storage.local.fsync: 1 is not allowed; expected true or false"),
    ({"auth.cache_seconds": 1.5}, "auth.cache_seconds: 1.5 is not allowed; expected an integer >= 0 and <= 3600"),
    ({"auth.secret_key": ""}, "auth.secret_key: '' is not allowed; expected a non-empty string"),
    ({"auth.owner_id": 5}, "auth.owner_id: 5 is not allowed; expected a non-empty string"),
    ({"server.virtual_host_domains": 5}, "server.virtual_host_domains: 5 is not allowed; expected a list of domain names"),
    ({"server.nope": 1}, "server.nope: unknown setting"),
    ({"nope.port": 1}, "nope.port: unknown setting"),
    ({"server.port.x": 1}, "server.port.x: unknown setting"),
])
def test_load_settings_overrides_bad_value_message(overrides, message):
    with pytest.raises(ConfigError) as exc:
        load(overrides=overrides)
    assert str(exc.value) == message


def test_load_settings_credential_secret_must_be_string(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load(write(tmp_path, "auth:\n  credentials:\n    - {access_key: x, secret_key: 1}\n"))
    assert str(exc.value) == "auth.credentials[0].secret_key: 1 is not allowed; expected a non-empty string"


def test_config_error_is_value_error():
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("overrides", [{"server": 5}, {"metadata.sqlite": {"path": "x.db"}}, {"auth": None}])
def test_load_settings_overrides_section_raises_config_error(overrides):
    with pytest.raises(ConfigError) as exc:
        load(overrides=overrides)
    assert str(exc.value).startswith(next(iter(overrides)))


@pytest.mark.parametrize("overrides,message", [
    ({"storage.backend": "aws"}, "storage.aws.bucket: '' is not allowed; expected a non-empty string"),
    ({"storage.backend": "gcp"}, "storage.gcp.bucket: '' is not allowed; expected a non-empty string"),
    ({"storage.backend": "azure"}, "storage.azure.container: '' is not allowed; expected a non-empty string"),
    ({"storage.backend": "azure", "storage.azure.container": "c"}, "storage.azure.account_url: "),
    ({"storage.backend": "aws", "storage.aws.bucket": "b", "storage.aws.part_size": 1024},
     "storage.aws.part_size: 1024 is not allowed"),
    ({"storage.backend": "gcp", "storage.gcp.bucket": "b", "storage.gcp.chunk_size": 300000},
     "storage.gcp.chunk_size: 300000 is not allowed; expected a multiple of 262144"),
    ({"storage.backend": "aws", "storage.aws.bucket": "b", "storage.aws.prefix": "/x"},
     "storage.aws.prefix: '/x' is not allowed"),
])
def test_gateway_settings_are_checked_at_load(overrides, message):
    with pytest.raises(ConfigError) as info:
        load(overrides=overrides)
    assert str(info.value).startswith(message)


def test_gateway_settings_from_the_environment():
    settings = load(BLEEPSTORE_STORAGE_BACKEND="aws", BLEEPSTORE_STORAGE_AWS_BUCKET="b",
                    BLEEPSTORE_STORAGE_AWS_ENDPOINT_URL="http://127.0.0.1:9000")
    assert settings.gateway.bucket == "b" and settings.gateway.endpoint_url == "http://127.0.0.1:9000"
    assert settings.gateway.part_size == 8 * 1024 * 1024 and settings.gateway.prefix == ""
    assert load().gateway is None
