"""Chart data for the sync status page, drawn as inline SVG by the template (no script, no CDN).

Freshness per data source against the 5-minute target, sync success and API error rates per hour over 24 h, records
per run. Coordinates are computed here so the template only places shapes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from accounts.models import Organization
from integrations.models import DataSource, IntegrationCall
from sync.models import DataSyncJob, JobStatus

TARGET_SECONDS = 300
WIDTH = 640
HOURS = 24


def _age_words(seconds: float | None) -> str:
    if seconds is None:
        return "never synced"
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    if seconds < 172800:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"


def freshness_chart(*, organization: Organization) -> dict[str, Any]:
    """One bar per enabled data source: how old its data is, on a 0–15 min scale with the 5-minute target at a third."""
    now = timezone.now()
    sources = (
        DataSource.objects.filter(organization=organization, is_enabled=True).select_related("integration").order_by("integration__display_name", "entity_type")
    )
    scale_max = TARGET_SECONDS * 3
    bars = []
    for source in sources:
        age = (now - source.last_synced_at).total_seconds() if source.last_synced_at else None
        state = "none" if age is None else "bad" if age > 2 * TARGET_SECONDS else "warn" if age > TARGET_SECONDS else "ok"
        bars.append(
            {
                "label": f"{source.integration.display_name} · {source.entity_type.replace('_', ' ')}",
                "state": state,
                "value": _age_words(age),
                "bar300": 0 if age is None else max(2, round(300 * min(age, scale_max) / scale_max)),  # the target line sits at 100
            }
        )
    return {"bars": bars, "fresh": sum(1 for b in bars if b["state"] == "ok"), "total": len(bars)}


def _line(points: list[float | None], height: int, top: int) -> str:
    """An SVG polyline path over 24 hourly slots, skipping hours with no data; values are ratios 0..1."""
    step = (WIDTH - 60) / (HOURS - 1)
    parts = []
    pen_down = False
    for index, value in enumerate(points):
        if value is None:
            pen_down = False
            continue
        x, y = 40 + index * step, top + height - value * height
        parts.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
        pen_down = True
    return " ".join(parts)


def rates_chart(*, organization: Organization) -> dict[str, Any]:
    """Per hour over the last 24 h: the share of syncs that succeeded, and the share of API calls that failed."""
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(hours=HOURS - 1)
    finished = [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.PARTIAL]
    jobs = (
        DataSyncJob.objects.filter(organization=organization, job_type="sync", created_at__gte=start, status__in=finished)
        .annotate(hour=TruncHour("created_at"))
        .values("hour")
        .annotate(total=Count("id"), ok=Count("id", filter=Q(status=JobStatus.SUCCEEDED)))
    )
    calls = (
        IntegrationCall.objects.filter(integration__organization=organization, created_at__gte=start)
        .annotate(hour=TruncHour("created_at"))
        .values("hour")
        .annotate(total=Count("id"), failed=Count("id", filter=Q(is_ok=False)))
    )
    slots = [start + timedelta(hours=i) for i in range(HOURS)]
    job_by_hour = {row["hour"]: row for row in jobs}
    call_by_hour = {row["hour"]: row for row in calls}
    success = [(job_by_hour[h]["ok"] / job_by_hour[h]["total"]) if h in job_by_hour else None for h in slots]
    errors = [(call_by_hour[h]["failed"] / call_by_hour[h]["total"]) if h in call_by_hour else None for h in slots]
    totals = {
        "jobs": sum(r["total"] for r in job_by_hour.values()),
        "ok": sum(r["ok"] for r in job_by_hour.values()),
        "calls": sum(r["total"] for r in call_by_hour.values()),
        "failed": sum(r["failed"] for r in call_by_hour.values()),
    }
    height, top = 120, 10
    step = (WIDTH - 60) / (HOURS - 1)
    return {
        "width": WIDTH,
        "height": height + 40,
        "top": top,
        "bottom": top + height,
        "success_path": _line(success, height, top),
        "error_path": _line(errors, height, top),
        "success_dots": [{"x": round(40 + i * step, 1), "y": round(top + height - v * height, 1)} for i, v in enumerate(success) if v is not None],
        "error_dots": [{"x": round(40 + i * step, 1), "y": round(top + height - v * height, 1)} for i, v in enumerate(errors) if v is not None],
        "gridlines": [{"y": top + height - f * height, "label": f"{int(f * 100)}%"} for f in (0, 0.5, 1)],
        "ticks": [{"x": round(40 + i * step, 1), "label": timezone.localtime(slots[i]).strftime("%H:00")} for i in range(0, HOURS, 6)]
        + [{"x": round(40 + (HOURS - 1) * step, 1), "label": "now"}],
        "success_percent": round(100 * totals["ok"] / totals["jobs"], 1) if totals["jobs"] else None,
        "error_percent": round(100 * totals["failed"] / totals["calls"], 2) if totals["calls"] else None,
        "totals": totals,
    }


def records_chart(*, organization: Organization, limit: int = 24) -> dict[str, Any]:
    """Records read by each of the latest runs, oldest first (failed runs in red)."""
    jobs = list(
        DataSyncJob.objects.filter(organization=organization).exclude(status=JobStatus.PENDING).select_related("integration").order_by("-created_at")[:limit]
    )[::-1]
    peak = max([j.records_processed for j in jobs] + [1])
    height, top = 110, 10
    slot = (WIDTH - 50) / max(len(jobs), 1)
    bars = []
    for index, job in enumerate(jobs):
        bar_height = max(1, round(height * job.records_processed / peak))
        name = job.integration.display_name if job.integration_id else "CSV import"
        bars.append(
            {
                "x": round(40 + index * slot + 2, 1),
                "y": top + height - bar_height,
                "width": max(2, round(slot - 4, 1)),
                "height": bar_height,
                "state": "bad" if job.status == JobStatus.FAILED else "warn" if job.status == JobStatus.PARTIAL else "ok",
                "title": f"{name}: {job.records_processed} records, {job.get_status_display().lower()}",
            }
        )
    return {"bars": bars, "width": WIDTH, "height": height + 30, "bottom": top + height, "top": top, "peak": peak, "count": len(jobs)}
