"""`bleepstore admin ...`: the admin API from a shell.

Two ways to reach it: over HTTP (``--url``, ``--token``; or $BLEEPSTORE_ADMIN_URL
and $BLEEPSTORE_ADMIN_TOKEN), or ``--direct`` on the database the configuration
names (for bootstrap: the first key, before any server runs or when the token is
lost). Both print the API's JSON; a refusal prints its message and exits 1.
The direct mode runs the same service functions the API runs.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import quote, urlencode

import click

from .config import CONFIG_ENV, ConfigError, load_settings


class Target:
    """Where the commands go: an HTTP endpoint, or the database directly."""

    def __init__(self, url: str | None, token: str | None, direct: bool, config_path: str | None) -> None:
        self.url, self.token, self.direct, self.config_path = (url or "").rstrip("/"), token, direct, config_path
        self._services = self._db = None

    # -- over HTTP --------------------------------------------------------

    def http(self, method: str, path: str, body: dict | None = None, query: dict | None = None):
        if not self.url:
            raise click.UsageError("give --url (or $BLEEPSTORE_ADMIN_URL), or --direct")
        if not self.token:
            raise click.UsageError("give --token (or $BLEEPSTORE_ADMIN_TOKEN)")
        url = self.url + "/admin" + path + (("?" + urlencode(query)) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = json.loads(raw).get("message") or raw.decode(errors="replace")
            except ValueError:
                message = raw.decode(errors="replace")[:500]
            raise click.ClickException(f"{exc.code}: {message}") from None
        except urllib.error.URLError as exc:
            raise click.ClickException(f"cannot reach {self.url}: {exc.reason}") from None
        return json.loads(raw) if raw else None

    # -- directly on the database ------------------------------------------

    def services(self):
        if self._services is None:
            from .crypto.keys import KeyRingError, load_key_ring
            from .crypto.secrets import load_secret_box
            from .metadata.engine import Database, make_engine
            from .metadata.store import MetadataStore
            from .recovery import SchemaBehind, check_schema, migrate
            from .service import Services
            try:
                settings = load_settings(self.config_path)
                keys = load_key_ring(settings)
                box = load_secret_box(settings, keys)
            except (ConfigError, KeyRingError) as exc:
                raise click.ClickException(f"configuration error: {exc}") from None
            self._db = Database(make_engine(settings))
            try:
                migrate(self._db.engine) if settings.migrate_on_start else check_schema(self._db.engine)
            except SchemaBehind as exc:
                raise click.ClickException(str(exc)) from None
            self._services = Services(settings=settings, meta=MetadataStore(self._db, settings.garbage_grace_seconds),
                                      storage=None, keys=keys, secrets=box)
        return self._services

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()

    def run(self, http_call, direct_call):
        """``http_call(self)`` or ``direct_call(services)``; admin refusals as messages."""
        if not self.direct:
            return http_call(self)
        from .service.credentials import AdminError
        try:
            return direct_call(self.services())
        except AdminError as exc:
            raise click.ClickException(f"{exc.status}: {exc.message}") from None


def _print(value) -> None:
    if value is not None:
        click.echo(json.dumps(value, indent=2, sort_keys=True))


@click.group(help="The admin API: credentials, status and storage statistics. Over HTTP by default "
                  "(--url and --token), or --direct on the configured database (for bootstrap).")
@click.option("--url", envvar="BLEEPSTORE_ADMIN_URL", help="The server, e.g. http://127.0.0.1:9010 "
              "($BLEEPSTORE_ADMIN_URL).")
@click.option("--token", envvar="BLEEPSTORE_ADMIN_TOKEN", help="The admin token ($BLEEPSTORE_ADMIN_TOKEN).")
@click.option("--direct", is_flag=True, help="Work on the database of the configuration, not over HTTP.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar=CONFIG_ENV,
              help="YAML configuration file, for --direct (default: $BLEEPSTORE_CONFIG, else built-in).")
@click.pass_context
def admin(ctx, url, token, direct, config_path) -> None:
    ctx.obj = Target(url, token, direct, config_path)
    ctx.call_on_close(ctx.obj.close)


def _direct_status(svc) -> dict:
    from . import __version__
    svc.meta.ping()
    s = svc.settings
    return {"version": __version__, "metadata": {"engine": s.metadata_engine, "status": "ok"},
            "storage": {"backend": s.storage_backend}, "region": s.region}


@admin.command(help="Version, uptime, metadata engine and storage backend.")
@click.pass_obj
def status(target: Target) -> None:
    _print(target.run(lambda t: t.http("GET", "/status"), _direct_status))


@admin.command("storage-stats", help="Buckets, objects and bytes, in total and per bucket.")
@click.pass_obj
def storage_stats(target: Target) -> None:
    from .service.credentials import storage_stats as stats
    _print(target.run(lambda t: t.http("GET", "/storage/stats"), stats))


@admin.group(help="Access keys: list, create, show, enable, disable, rotate, delete.")
def credentials() -> None:
    pass


def _key(access_key: str) -> str:
    return "/credentials/" + quote(access_key, safe="")


@credentials.command("list", help="Every access key (never a secret).")
@click.pass_obj
def list_(target: Target) -> None:
    from .service.credentials import list_credentials
    _print(target.run(lambda t: t.http("GET", "/credentials"), lambda svc: {"credentials": list_credentials(svc)}))


@credentials.command(help="A new access key; its secret is printed this once.")
@click.option("--description", help="Free text (who or what the key is for).")
@click.option("--owner-id", help="The owner (canonical user id) the key acts as: an existing owner's id "
              "gives that user a second key (default: a new owner).")
@click.option("--display-name", help="The owner's display name (default: the existing owner's, else the key).")
@click.pass_obj
def create(target: Target, description, owner_id, display_name) -> None:
    from .service.credentials import create_credential
    body = {k: v for k, v in (("description", description), ("owner_id", owner_id),
                              ("display_name", display_name)) if v is not None}
    _print(target.run(lambda t: t.http("POST", "/credentials", body),
                      lambda svc: create_credential(svc, description, owner_id, display_name)))


@credentials.command(help="One access key (never its secret).")
@click.argument("access_key")
@click.pass_obj
def show(target: Target, access_key: str) -> None:
    from .service.credentials import get_credential
    _print(target.run(lambda t: t.http("GET", _key(access_key)), lambda svc: get_credential(svc, access_key)))


def _set_status(target: Target, access_key: str, value: str) -> None:
    from .service.credentials import set_status
    _print(target.run(lambda t: t.http("PUT", _key(access_key) + "/status", {"status": value}),
                      lambda svc: set_status(svc, access_key, value)))


@credentials.command(help="Let the key sign requests again.")
@click.argument("access_key")
@click.pass_obj
def enable(target: Target, access_key: str) -> None:
    _set_status(target, access_key, "active")


@credentials.command(help="Refuse the key's requests (InvalidAccessKeyId) within auth.cache_seconds.")
@click.argument("access_key")
@click.pass_obj
def disable(target: Target, access_key: str) -> None:
    _set_status(target, access_key, "disabled")


@credentials.command(help="A new secret for the key (printed this once); the old one stops working.")
@click.argument("access_key")
@click.pass_obj
def rotate(target: Target, access_key: str) -> None:
    from .service.credentials import rotate as rotate_key
    _print(target.run(lambda t: t.http("POST", _key(access_key) + "/rotate"), lambda svc: rotate_key(svc, access_key)))


@credentials.command(help="Delete the key. The last key of an owner of buckets needs --transfer-to or "
                          "--delete-buckets (empty buckets only).")
@click.argument("access_key")
@click.option("--transfer-to", help="Give the owner's buckets to this owner_id.")
@click.option("--delete-buckets", is_flag=True, help="Delete the owner's buckets (each must be empty).")
@click.pass_obj
def delete(target: Target, access_key: str, transfer_to, delete_buckets) -> None:
    from .service.credentials import delete as delete_key
    query = {k: v for k, v in (("transfer_to", transfer_to), ("delete_buckets", "true" if delete_buckets else None))
             if v is not None}
    target.run(lambda t: t.http("DELETE", _key(access_key), query=query),
               lambda svc: delete_key(svc, access_key, transfer_to, delete_buckets))
    click.echo(f"deleted {access_key}", err=True)


__all__ = ["admin"]
