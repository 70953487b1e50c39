"""The alert rules, the Grafana dashboard and the operations pages name only metrics Bastion exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import Counter, Histogram

from common import metrics
from sync.metrics import SyncStateCollector

DOCS = Path(__file__).resolve().parents[2] / "docs"
FILES = ("operations.md", "scaling.md", "prometheus-alerts.yml", "grafana/bastion-dashboard.json")


def exported_series() -> set[str]:
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names.add(f"{value._name}_total")
        elif isinstance(value, Histogram):
            names.update(f"{value._name}{suffix}" for suffix in ("", "_bucket", "_sum", "_count"))  # the family, and its series
    names.update(family.name for family in SyncStateCollector().collect())
    return names


@pytest.mark.django_db
def test_every_metric_the_docs_name_is_exported():
    exported = exported_series()
    assert "bastion_sync_source_age_seconds" in exported and "bastion_vendor_calls_total" in exported
    for name in FILES:
        text = (DOCS / name).read_text()
        named = {m for m in re.findall(r"\bbastion_[a-z_]+[a-z]", text) if not m.startswith("bastion_site")}
        assert named, name
        unknown = sorted(n for n in named if n not in exported and f"{n}_total" not in exported)
        assert not unknown, f"{name} names metrics Bastion does not export: {unknown}"


def test_alert_rules_and_dashboard_are_well_formed():
    rules = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text())
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    for required in ("BastionSourceStale", "BastionSyncRunStalled", "BastionIntegrationNeedsReconnect"):
        assert alerts[required]["expr"].strip()
    dashboard = json.loads((DOCS / "grafana" / "bastion-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["panels"]
    assert all(target["expr"].strip() for panel in dashboard["panels"] for target in panel["targets"])
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
