"""Prometheus multiprocess state survives nothing and piles up nowhere: each server
keeps it in one fixed directory of its own (beside its SQLite database; in $TMPDIR,
under a stable name, without a local database), emptied by every start, so a
kill -9 leaves no stale directory behind and the counters start again from zero."""
from __future__ import annotations

import os

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ..conftest import PG_URL, make_client
from ..servers import Server, write_config


def _server(tmp_path, name: str, tmpdir, database_url: str | None = None, **env) -> Server:
    workdir = tmp_path / name
    workdir.mkdir()
    base = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    return Server(workdir, dict(base, BLEEPSTORE_CONFIG=str(write_config(workdir, database_url)),
                                TMPDIR=str(tmpdir), **env))


def _list_buckets_count(server) -> float:
    """bleepstore_s3_operations_total for successful ListBuckets, summed over workers."""
    text = requests.get(server.endpoint + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (sample.name == "bleepstore_s3_operations_total" and sample.labels.get("operation") == "ListBuckets"
                    and sample.labels.get("outcome") == "success"):
                return sample.value
    return 0.0


def _list_buckets(server, times: int) -> None:
    s3 = make_client(server.endpoint)
    for _ in range(times):
        s3.list_buckets()
    s3._endpoint.http_session.close()


def _stale_temp_dirs(tmpdir) -> list[str]:
    return sorted(p.name for p in tmpdir.glob("bleepstore-metrics-*"))


def test_kill_9_leaves_no_metrics_directory_and_counters_restart_from_zero(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    srv = _server(tmp_path, "server", tmpdir).start()
    try:
        _list_buckets(srv, 3)
        assert _list_buckets_count(srv) == 3
        srv.kill()  # no on_exit: the files stay, for the next start to clear
        srv.start()  # same configuration and port: the same directory
        assert _stale_temp_dirs(tmpdir) == []
        _list_buckets(srv, 2)
        assert _list_buckets_count(srv) == 2, "no samples from the killed server's workers"
        own = sorted((srv.workdir / "data").glob("metadata.db-metrics-*"))
        assert len(own) == 1 and any(own[0].iterdir()), "beside the database, with the workers' files"
    finally:
        srv.stop()
    assert not own[0].exists(), "a clean stop removes it"
    assert _stale_temp_dirs(tmpdir) == []


def test_two_servers_on_one_host_do_not_share_metrics(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    first = _server(tmp_path, "first", tmpdir).start()
    second = _server(tmp_path, "second", tmpdir)
    try:
        _list_buckets(first, 2)
        second.start()  # its start empties its own directory, not the first server's
        _list_buckets(second, 1)
        assert (_list_buckets_count(first), _list_buckets_count(second)) == (2, 1)
    finally:
        second.stop()
        first.stop()
    assert _stale_temp_dirs(tmpdir) == []


def test_operator_metrics_directory_is_used_emptied_on_start_and_kept(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    chosen = tmp_path / "prometheus"
    chosen.mkdir()
    (chosen / "counter_99999.db").write_bytes(b"left by a killed server")
    srv = _server(tmp_path, "server", tmpdir, PROMETHEUS_MULTIPROC_DIR=str(chosen)).start()
    try:
        _list_buckets(srv, 1)
        assert _list_buckets_count(srv) == 1
        assert not (chosen / "counter_99999.db").exists()
        assert any(chosen.glob("*.db"))
    finally:
        srv.stop()
    assert chosen.is_dir() and _stale_temp_dirs(tmpdir) == []


@pytest.mark.skipif(not PG_URL, reason="needs BLEEPSTORE_TEST_DATABASE_URL (PostgreSQL)")
def test_without_a_local_database_one_stable_directory_in_tmpdir(tmp_path, pg_databases):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    srv = _server(tmp_path, "server", tmpdir, pg_databases.create()).start()
    try:
        _list_buckets(srv, 2)
        stable = _stale_temp_dirs(tmpdir)
        assert len(stable) == 1 and stable[0].startswith(f"bleepstore-metrics-{os.getuid()}-")
        assert (os.stat(tmpdir / stable[0]).st_mode & 0o777) == 0o700
        srv.kill()
        srv.start()
        _list_buckets(srv, 1)
        assert _list_buckets_count(srv) == 1
        assert _stale_temp_dirs(tmpdir) == stable, "the same directory again, not a new one"
    finally:
        srv.stop()
    assert _stale_temp_dirs(tmpdir) == []
