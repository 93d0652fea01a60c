"""The dashboard and the alert rules in deploy/ ask only for metrics Railyard serves.

A renamed counter would otherwise leave a panel empty and an alert silent, with nothing
failing: Prometheus answers an unknown name with no series, not an error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import connectors.metrics  # noqa: F401  (registers every Railyard metric)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NAME = re.compile(r"\brailyard_[a-z_]+")


def served() -> set[str]:
    """Every series name the processes expose (``_total``, ``_bucket``, ... included)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    names: set[str] = set()
    for family in REGISTRY.collect():  # a labelled metric has no samples until first used
        names.add(family.name)
        names.update(family.name + s for s in suffixes.get(family.type, ()))
    return {n for n in names if n.startswith("railyard_")}


def dashboard_exprs() -> list[str]:
    exprs: list[str] = []
    for path in sorted((DEPLOY / "grafana").rglob("*.json")):
        for panel in json.loads(path.read_text()).get("panels", []):
            exprs += [t["expr"] for t in panel.get("targets", []) if "expr" in t]
    return exprs


def alert_exprs() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def test_every_metric_the_dashboard_and_alerts_name_is_served() -> None:
    exprs = dashboard_exprs() + alert_exprs()
    named = {n for e in exprs for n in NAME.findall(e)}
    assert len(exprs) >= 10 and named  # the files were read, not skipped
    assert named - served() == set()


def test_the_check_would_catch_a_renamed_metric() -> None:
    assert NAME.findall("rate(railyard_invoices_deliverd_total[5m])")[0] not in served()
    assert "railyard_invoices_delivered_total" in served()


def test_payments_are_on_the_dashboard() -> None:
    assert any("railyard_invoice_payments_total" in e for e in dashboard_exprs())
