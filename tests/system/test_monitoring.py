"""What dashboards built on the earlier BleepStore, and deploy/'s own Grafana
dashboard, read from /metrics, on a fresh 2-worker server (gunicorn multiprocess
mode): the earlier names bleepstore_objects_total / bleepstore_buckets_total with
exact (not doubled) counts, and every metric any dashboard query names."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import requests

from ..conftest import ENGINES, make_client
from ..servers import Server, write_config

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "bleepstore.json"

BUCKETS, OBJECTS_PER_BUCKET, SIZE = 3, 4, 1000


@pytest.fixture(scope="module", params=ENGINES)
def fresh_server(request, tmp_path_factory, pg_databases):
    """A server nobody else writes to, so that the store's counts are known."""
    workdir = tmp_path_factory.mktemp("monitoring")
    url = pg_databases.create() if request.param == "postgresql" else None
    env = dict(os.environ, BLEEPSTORE_CONFIG=str(write_config(workdir, url, extra="")))
    srv = Server(workdir, env).start()
    s3 = make_client(srv.endpoint)
    for b in range(BUCKETS):
        s3.create_bucket(Bucket=f"mon-{b}")
        for k in range(OBJECTS_PER_BUCKET):
            s3.put_object(Bucket=f"mon-{b}", Key=f"k{k}", Body=b"m" * SIZE)
    # A few more requests, so that every histogram and every outcome has samples.
    s3.get_object(Bucket="mon-0", Key="k0")["Body"].read()
    s3.list_objects_v2(Bucket="mon-0")
    assert requests.get(f"{srv.endpoint}/mon-0/k0", timeout=10).status_code == 403  # anonymous: client_error
    yield srv
    srv.stop()


def exposition(srv) -> str:
    resp = requests.get(srv.endpoint + "/metrics", timeout=10)
    assert resp.status_code == 200
    return resp.text


def samples(text: str) -> dict[str, list[tuple[str, float]]]:
    """Sample name -> [(labels, value)] of a Prometheus text exposition."""
    out: dict[str, list[tuple[str, float]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)", line)
        assert m, line
        out.setdefault(m.group(1), []).append((m.group(2) or "", float(m.group(3))))
    return out


def types(text: str) -> dict[str, str]:
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def test_the_earlier_metric_names_carry_exact_counts(fresh_server):
    text = exposition(fresh_server)
    found, kinds = samples(text), types(text)
    for name, expected in (("bleepstore_buckets_total", BUCKETS), ("bleepstore_buckets", BUCKETS),
                           ("bleepstore_objects_total", BUCKETS * OBJECTS_PER_BUCKET),
                           ("bleepstore_objects", BUCKETS * OBJECTS_PER_BUCKET)):
        # One sample, the store's count: not one per worker, not summed over the two.
        assert found[name] == [("", float(expected))], (name, found.get(name))
        assert kinds[name] == "gauge", name
    assert found["bleepstore_stored_bytes"] == [("", float(BUCKETS * OBJECTS_PER_BUCKET * SIZE))]
    # Two workers served these requests (the counts are summed over them, the gauges not).
    assert len([labels for labels, _ in found["process_resident_memory_bytes"] if 'role="worker"' in labels]) == 2


def test_the_earlier_names_parse_as_openmetrics_too(fresh_server):
    resp = requests.get(fresh_server.endpoint + "/metrics", timeout=10,
                        headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/openmetrics-text")
    assert re.search(r"^bleepstore_objects_total 12(\.0)?$", resp.text, re.M), resp.text[-2000:]
    assert resp.text.rstrip().endswith("# EOF")


# -- every dashboard query names an exported metric ------------------------------------------

PROMQL_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                             "unless", "offset", "inf", "nan"})


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not
    functions, keywords, label names (in {...} or in by/without/on/ignoring lists),
    durations, strings or Grafana variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals (label values, regexes)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations, $__rate_interval
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables outside brackets
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if query:
            # label_values(metric, label): the metric is what it reads.
            m = re.fullmatch(r"\s*label_values\(\s*([^,]+?)\s*,\s*\w+\s*\)\s*", query)
            exprs.append(m.group(1) if m else query)
    return exprs


def test_the_metric_name_extraction_itself():
    assert metric_names('histogram_quantile(0.99, sum by (le, route) (rate(a_seconds_bucket{x=~"$i",y="by (z)"}'
                        "[$__rate_interval])))") == {"a_seconds_bucket"}
    assert metric_names("sum(rate(a_total[5m])) / on (instance) group_left max(b) > bool 0") == {"a_total", "b"}
    assert metric_names("max(bleepstore_nope) or vector(0)") == {"bleepstore_nope"}


def test_every_dashboard_query_names_a_metric_the_server_exports(fresh_server):
    exported = set(samples(exposition(fresh_server)))
    queries = dashboard_queries()
    assert len(queries) >= 20
    named: set[str] = set()
    for expr in queries:
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        missing = names - exported
        assert not missing, f"{expr!r} names {sorted(missing)}, which /metrics does not export"
        named |= names
    # And the check can fail: a name the server does not export is caught.
    assert metric_names("sum(rate(bleepstore_requests_total[5m]))") - exported == {"bleepstore_requests_total"}
    assert {"bleepstore_http_request_duration_seconds_bucket", "bleepstore_s3_operations_total",
            "bleepstore_bytes_received_total", "bleepstore_bytes_sent_total", "bleepstore_objects",
            "bleepstore_stored_bytes"} <= named
