"""What Amplitude's spec.yaml cannot say: the saved charts entity reads one chart per configured id (one page each)."""

from __future__ import annotations

from typing import Any

from integrations.connectors.results import Page
from integrations.errors import ApiBadRequest

MAX_CHARTS = 20
MAX_CHART_ID = 40


def configured_chart_ids(config: dict[str, Any]) -> list[str]:
    """The chart ids of config `charts` (comma or space separated), checked: letters and digits only, at most 20."""
    raw = config.get("charts") or ""
    parts = raw if isinstance(raw, list) else str(raw).replace(",", " ").split()
    ids = list(dict.fromkeys(str(part).strip() for part in parts if str(part).strip()))
    if not ids:
        raise ApiBadRequest("Name the saved Amplitude charts to read (config charts: their ids, comma-separated).")
    if len(ids) > MAX_CHARTS:
        raise ApiBadRequest(f"At most {MAX_CHARTS} charts can be read; {len(ids)} are configured.")
    bad = [chart for chart in ids if not (chart.isascii() and chart.isalnum() and len(chart) <= MAX_CHART_ID)]
    if bad:
        raise ApiBadRequest(f"Not an Amplitude chart id (letters and digits only): {bad[0][:MAX_CHART_ID]!r}")
    return ids


def chart_record(chart_id: str, body: Any) -> dict[str, Any]:
    """One chart's results as a record: labels, x values and each series' values with its latest value."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("series"), list):
        raise ApiBadRequest(f"Amplitude answered chart {chart_id} without a data.series list (not a chart Bastion can read).")
    labels = list(data.get("seriesLabels") or [])
    series = []
    for index, points in enumerate(data["series"]):
        values = [point.get("value") if isinstance(point, dict) else point for point in (points or [])]
        label = labels[index] if index < len(labels) else f"Series {index + 1}"
        series.append({"label": label if isinstance(label, str) else " / ".join(map(str, label)), "values": values, "latest": values[-1] if values else None})
    return {"id": chart_id, "labels": [s["label"] for s in series], "x_values": list(data.get("xValues") or []), "series": series}


def read_charts(connector: Any, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
    """One configured chart per page (`page` = its index), so a run's progress is kept chart by chart."""
    chart_ids = configured_chart_ids(connector.config)
    index = int((page or {}).get("index", 0)) if isinstance(page, dict) else 0
    if index >= len(chart_ids):
        return Page(records=[], next_page=None)
    chart_id = chart_ids[index]
    answer = connector.send_scoped({"use": "chart"}, connector.scope(id=chart_id))
    following = {"index": index + 1} if index + 1 < len(chart_ids) else None
    return Page(records=[chart_record(chart_id, answer["body"])], next_page=following, is_full_scan=True)
