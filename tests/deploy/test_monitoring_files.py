"""deploy/prometheus.yml, the Grafana provisioning files and dashboard, and the
compose file's optional monitoring services, checked without a container engine:
they parse, and every path the compose file mounts exists. That every dashboard
query names a metric the server exports is tests/system/test_monitoring.py."""
from __future__ import annotations

import json

import pytest
import yaml

from .support import ROOT, load_compose

PROMETHEUS = ROOT / "deploy" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "bleepstore.json"


@pytest.fixture(scope="module")
def services():
    return load_compose()["services"]


def _mounts(service: dict) -> dict[str, str]:
    """Bind mounts of a service: container path -> host path (relative to the repository)."""
    out = {}
    for volume in service.get("volumes", []):
        host, container = volume.split(":")[:2]
        if host.startswith("./"):
            out[container] = host[2:]
    return out


def test_the_monitoring_services_are_optional_and_mount_files_that_exist(services):
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
        assert services[name]["restart"] == "unless-stopped"
        mounts = _mounts(services[name])
        assert mounts, name
        for container, host in mounts.items():
            assert (ROOT / host).exists(), f"{name} mounts {host} (at {container}), which does not exist"
            assert services[name]["volumes"][[v.split(":")[1] for v in services[name]["volumes"]].index(container)] \
                .endswith(":ro"), f"{name} must mount {host} read-only"
    prometheus = _mounts(services["prometheus"])
    assert prometheus["/etc/prometheus/prometheus.yml"] == "deploy/prometheus.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    grafana = _mounts(services["grafana"])
    assert grafana["/etc/grafana/provisioning"] == "deploy/grafana/provisioning"
    assert grafana["/etc/grafana/dashboards"] == "deploy/grafana/dashboards"
    # Nothing published to every interface by default.
    for name in ("prometheus", "grafana"):
        for port in services[name]["ports"]:
            assert port.startswith("${MONITORING_BIND:-127.0.0.1}:"), port


def test_prometheus_scrapes_every_node_directly(services):
    config = yaml.safe_load(PROMETHEUS.read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "bleepstore" and job["metrics_path"] == "/metrics"
    (sd,) = job["dns_sd_configs"]
    # The compose service name (every replica), on the nodes' own port: not nginx.
    assert sd["names"] == ["bleepstore"] and sd["port"] == 9010 and sd["type"] == "A"
    assert "bleepstore" in services and "9010" in services["bleepstore"]["expose"]


def test_grafana_provisioning_points_at_the_mounted_dashboards_and_prometheus(services):
    provisioning = GRAFANA / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    assert "prometheus" in services
    providers = yaml.safe_load((provisioning / "dashboards" / "bleepstore.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    mounted = _mounts(services["grafana"])
    assert provider["options"]["path"] in mounted, "the provider reads a path the compose file mounts"
    assert (ROOT / mounted[provider["options"]["path"]] / "bleepstore.json").is_file()
    # The dashboard's queries go to the provisioned datasource.
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    assert uids == {source["uid"]}
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/bleepstore.json"


def test_the_dashboard_covers_what_operators_watch():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "bleepstore"
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for needed in ("bleepstore_s3_operations_total", "bleepstore_http_requests_total",  # by operation, status
                   "histogram_quantile(0.99", "bleepstore_http_request_duration_seconds_bucket",  # latency
                   "bleepstore_bytes_received_total", "bleepstore_bytes_sent_total",  # bytes in and out
                   "bleepstore_objects", "bleepstore_stored_bytes",  # objects and bytes stored
                   'outcome=~"client_error|server_error"', 'status=~"5.."'):  # errors
        assert needed in exprs, needed
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    # Counts of the one shared database: never summed over the nodes.
    assert "sum(bleepstore_objects" not in exprs and "sum(bleepstore_buckets" not in exprs
