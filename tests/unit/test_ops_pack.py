"""The ops pack (deploy/ops/): the alert rules pass promtool's checks and unit tests, every
dashboard query is valid PromQL, and every metric the dashboard and the rules name is one
the services expose."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from gnlc_core.metrics import ServiceMetrics
from tests.metrics_support import ROOT, SERVICES, build, run_promtool, settings_for

OPS = ROOT / "deploy" / "ops"
RULES = OPS / "alerts.yml"
DASHBOARD = OPS / "grafana-dashboard.json"
#: what Grafana puts in a query before Prometheus sees it
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}

_METRIC = re.compile(r"\b(gnlc_[a-zA-Z0-9_:]*)")


def series_names(registry: CollectorRegistry) -> set[str]:
    """The names a registry's families are stored under in Prometheus: a counter's
    ``_total``, a histogram's ``_bucket``, ``_sum`` and ``_count`` ..."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    return {
        f"{family.name}{suffix}"
        for family in registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }


@pytest.mark.parametrize(
    ("family_type", "name", "expected"),
    [
        ("counter", "gnlc_x", {"gnlc_x_total", "gnlc_x_created"}),
        ("histogram", "gnlc_y_seconds", {"gnlc_y_seconds_bucket", "gnlc_y_seconds_sum"}),
        ("gauge", "gnlc_z", {"gnlc_z"}),
    ],
)
def test_series_names(family_type: str, name: str, expected: set[str]) -> None:
    from prometheus_client import Counter, Gauge, Histogram

    registry = CollectorRegistry()
    kinds: dict[str, Any] = {"counter": Counter, "histogram": Histogram, "gauge": Gauge}
    kinds[family_type](name, "doc", registry=registry)
    names = series_names(registry)
    assert expected <= names
    assert name not in names or family_type == "gauge"  # a bare counter name is no series


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    names: set[str] = set()
    for service in SERVICES:
        app = build(service, settings_for(tmp_path_factory.mktemp(service)))
        metrics = app.state.metrics
        assert isinstance(metrics, ServiceMetrics)
        names |= series_names(metrics.registry)
    return names


def rule_expressions() -> dict[str, str]:
    document = yaml.safe_load(RULES.read_text())
    return {rule["alert"]: rule["expr"] for group in document["groups"] for rule in group["rules"]}


def dashboard_expressions() -> dict[str, str]:
    dashboard = json.loads(DASHBOARD.read_text())
    found: dict[str, str] = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found[f"{panel['title']} / {target['refId']}"] = target["expr"]
    return found


def test_rules_pass_promtool_check() -> None:
    done = run_promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 9 rules found" in done.stdout


def test_rules_pass_their_unit_tests() -> None:
    done = run_promtool("test", "rules", str(OPS / "alerts.test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_runbook() -> None:
    document = yaml.safe_load(RULES.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"info", "warning", "critical"}
            assert {"summary", "description", "runbook"} <= rule["annotations"].keys(), rule


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as the expression of a recording rule."""
    rules = []
    for index, expr in enumerate(dashboard_expressions().values()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = run_promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboard_shape() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for subject in ("latency", "lag", "retry backlog", "held", "lateness", "smtp", "endpoint"):
        assert subject in titles, subject
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"], panel["title"]


@pytest.mark.parametrize("where", ["rules", "dashboard"], ids=["alert rules", "Grafana dashboard"])
def test_every_metric_named_is_exposed(where: str, exposed: set[str]) -> None:
    expressions = rule_expressions() if where == "rules" else dashboard_expressions()
    assert expressions
    unknown = {
        f"{name} (in {source})"
        for source, expr in expressions.items()
        for name in _METRIC.findall(expr)
        if name not in exposed
    }
    assert not unknown, sorted(unknown)
