"""docker-compose.yml, the Dockerfile and deploy/nginx.conf, checked without a container
engine: the compose file against the Compose Specification schema, and the invariants
the deployment relies on (the same scripts the other tests run, health checks, a
non-root image, no secrets baked in, nginx's streaming and Host settings)."""
from __future__ import annotations

import json
import os
import re
import subprocess
from importlib import resources

import pytest
from jsonschema import Draft202012Validator

from .support import (COMPOSE_FILE, DEPLOY, DOCKERFILE, ENTRYPOINT, MIGRATE, NGINX_CONF, ROOT, VENV_BIN, Nginx,
                      interpolate, load_compose, render_nginx_conf, service_environment)


def compose_spec_schema() -> dict:
    """The Compose Specification JSON schema, as shipped by the check-jsonschema
    package (vendored there from compose-spec/compose-spec, Apache-2.0)."""
    path = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    return json.loads(path.read_text(encoding="utf-8"))


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.fixture(scope="module")
def compose():
    return load_compose()


def test_compose_file_is_valid_against_the_compose_spec(compose):
    schema = compose_spec_schema()
    assert schema["title"] == "Compose Specification"
    errors = sorted(Draft202012Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_compose_file_passes_the_check_jsonschema_cli():
    """The same schema through the package's own CLI (its YAML loader, its checks)."""
    proc = subprocess.run([str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_services_and_their_order(compose):
    services = compose["services"]
    # Without a profile: the store itself; Prometheus and Grafana only with "monitoring".
    assert {name for name, svc in services.items() if not svc.get("profiles")} == {
        "postgres", "migrate", "bleepstore", "nginx"}
    assert {name: svc.get("profiles") for name, svc in services.items() if svc.get("profiles")} == {
        "prometheus": ["monitoring"], "grafana": ["monitoring"]}
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["bleepstore"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"}}
    assert services["nginx"]["depends_on"]["bleepstore"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"


def test_the_scripts_the_tests_run_are_the_ones_compose_runs(compose):
    services = compose["services"]
    # migrate: the image with deploy/migrate.sh as its entrypoint.
    assert services["migrate"]["entrypoint"] == ["/app/deploy/migrate.sh"]
    assert services["migrate"]["build"] == "." and services["bleepstore"]["build"] == "."
    assert services["migrate"]["image"] == services["bleepstore"]["image"]
    # bleepstore: the image's own entrypoint, deploy/entrypoint.sh -> gunicorn.conf.py.
    assert "entrypoint" not in services["bleepstore"] and "command" not in services["bleepstore"]
    instructions = dockerfile_instructions()
    assert ("ENTRYPOINT", '["/app/deploy/entrypoint.sh"]') in instructions
    assert "WORKDIR" in dict(instructions) and dict(instructions)["WORKDIR"] == "/app"
    copies = " ".join(rest for word, rest in instructions if word == "COPY")
    assert "deploy/entrypoint.sh" in copies and "deploy/migrate.sh" in copies
    assert "gunicorn.conf.py" in copies and "bleepstore_app" in copies
    # The top-level Alembic folder: pip install maps it into the package (setup.py).
    assert ("COPY", "migrations migrations") in instructions
    assert "exec gunicorn -c gunicorn.conf.py wsgi:app" in ENTRYPOINT.read_text()
    assert "flask db upgrade" in MIGRATE.read_text()
    for script in (ENTRYPOINT, MIGRATE):
        assert os.access(script, os.X_OK), f"{script} is not executable"
        proc = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    # nginx: the maintained configuration, rendered by the image's template step.
    volumes = services["nginx"]["volumes"]
    assert "./deploy/nginx.conf:/etc/nginx/templates/nginx.conf.template:ro" in volumes
    assert services["nginx"]["environment"]["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/nginx"


def test_server_settings(compose):
    env = service_environment("bleepstore")
    assert env["BLEEPSTORE_METADATA_ENGINE"] == "postgresql"
    assert env["BLEEPSTORE_METADATA_MIGRATE_ON_START"] == "false"
    assert env["BLEEPSTORE_METADATA_POSTGRESQL_URL"].startswith("postgresql+psycopg://bleepstore:")
    assert env["BLEEPSTORE_METADATA_POSTGRESQL_URL"].endswith("@postgres:5432/bleepstore")
    assert env["BLEEPSTORE_STORAGE_LOCAL_ROOT_DIR"].startswith("/var/lib/bleepstore/")
    assert service_environment("migrate") == env, "migrate and the servers must see one configuration"
    # Every BLEEPSTORE_* name is a real setting.
    from bleepstore_app.config import load_settings
    settings = load_settings(environ=env)
    assert settings.migrate_on_start is False and settings.metadata_engine == "postgresql"
    # Data on a named volume mounted at the root dir's parent.
    volumes = compose["services"]["bleepstore"]["volumes"]
    assert "objects:/var/lib/bleepstore" in volumes and "objects" in compose["volumes"]
    assert "pgdata:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]
    assert "pgdata" in compose["volumes"]


def test_secrets_come_from_the_environment_not_the_files(compose):
    env = compose["services"]["bleepstore"]["environment"]
    for name in ("BLEEPSTORE_AUTH_SECRET_KEY", "BLEEPSTORE_AUTH_ACCESS_KEY"):
        assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", env[name]), f"{name} must be required from .env"
    assert ":${POSTGRES_PASSWORD:?" in env["BLEEPSTORE_METADATA_POSTGRESQL_URL"]
    assert compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        service_environment("bleepstore", dotenv={})
    dockerfile = DOCKERFILE.read_text()
    assert "SECRET" not in dockerfile.replace("BLEEPSTORE_AUTH_SECRET_KEY, the database URL", "")
    assert "PASSWORD" not in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    for pattern in (".env", ".git", ".venv", "data", "deploy/tls"):
        assert pattern in ignored, f".dockerignore must exclude {pattern}"


def test_health_checks(compose):
    services = compose["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "/readyz" in " ".join(services["bleepstore"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(services["nginx"]["healthcheck"]["test"])
    healthcheck = [rest for word, rest in dockerfile_instructions() if word == "HEALTHCHECK"]
    assert len(healthcheck) == 1 and "/readyz" in healthcheck[0]


def test_dockerfile_image_and_user():
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    installs = [rest for word, rest in instructions if word == "RUN" and "pip install" in rest]
    assert any(".[postgres," in r for r in installs), "install the project from setup.cfg with the postgres extra"
    users = [rest for word, rest in instructions if word == "USER"]
    assert users, "the image must not run as root"
    final = users[-1].split(":")[0]
    assert final not in ("root", "0")
    assert any("useradd" in rest and final in rest for word, rest in instructions if word == "RUN")
    assert instructions.index(("USER", users[-1])) > max(i for i, (w, _) in enumerate(instructions) if w == "RUN")
    for source in ("setup.cfg", "setup.py", "README.md", "gunicorn.conf.py", "wsgi.py", "bleepstore_app",
                   "migrations/alembic.ini", "migrations/env.py", "deploy/entrypoint.sh", "deploy/migrate.sh"):
        assert (ROOT / source).exists(), source


def test_interpolation_matches_compose():
    values = {"A": "a", "EMPTY": ""}
    assert interpolate("${A}-${B:-b}-${EMPTY:-e}-${EMPTY-e}-$$A-$A", values) == "a-b-e--$A-a"
    with pytest.raises(KeyError):
        interpolate("${MISSING:?say so}", values)


def test_nginx_conf_streams_and_keeps_the_host():
    text = NGINX_CONF.read_text()
    for directive in ("proxy_request_buffering off;", "proxy_buffering off;", "client_max_body_size 0;",
                      "proxy_http_version 1.1;", 'proxy_set_header Connection "";',
                      "proxy_set_header Host $http_host;",
                      "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                      "proxy_set_header X-Forwarded-Proto $scheme;", "proxy_read_timeout 300s;",
                      "proxy_send_timeout 300s;", "listen ${NGINX_HTTPS_PORT} ssl;",
                      "ssl_certificate ${NGINX_TLS_CERTIFICATE};", "server_name ${NGINX_SERVER_NAMES};",
                      "proxy_pass http://bleepstore;", "keepalive 64;"):
        assert directive in text, directive
    rendered = render_nginx_conf(service_environment("nginx"))
    assert "server bleepstore:9010;" in rendered
    assert "server_name s3.localhost *.s3.localhost;" in rendered
    assert "${" not in rendered


def test_nginx_accepts_the_rendered_configuration(tmp_path):
    nginx = Nginx(tmp_path, ["127.0.0.1:9", "127.0.0.1:10", "127.0.0.1:11"])
    nginx.prepare()
    proc = nginx.test_config()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test is successful" in proc.stderr


def test_readme_names_every_piece():
    readme = (DEPLOY / "README.md").read_text()
    for word in ("docker compose", "flask db upgrade", "deploy/nginx.conf", "migrate.sh", "entrypoint.sh",
                 "BLEEPSTORE_METADATA_MIGRATE_ON_START", "virtual_host_domains", "/readyz"):
        assert word in readme, word


def test_render_matches_envsubst():
    """The tests' renderer and GNU envsubst (what the nginx image runs) agree."""
    import shutil
    envsubst = shutil.which("envsubst")
    if envsubst is None:
        pytest.fail("envsubst is missing: apt-get install -y gettext-base")
    values = service_environment("nginx")
    names = " ".join(f"${{{k}}}" for k in values if k.startswith("NGINX_"))
    proc = subprocess.run([envsubst, names], input=NGINX_CONF.read_text(), capture_output=True, text=True,
                          env=dict(os.environ, **values), check=True)
    assert proc.stdout == render_nginx_conf(values)
