"""Prometheus metrics every process records (web, Celery workers, beat); scraped at /metrics.

Under gunicorn or Celery's prefork pool set PROMETHEUS_MULTIPROC_DIR (an empty directory shared by the processes of one
host) before start-up: prometheus_client then keeps each process's samples in files there and /metrics adds them up.
Labels stay low-cardinality (connector keys, actions, outcomes); per-data-source freshness is read at scrape time instead.
"""

from __future__ import annotations

import os

from prometheus_client import Counter, Histogram

# Vendor calls wait on the network: 25 ms (a loopback sandbox) to a 30 s read timeout.
CALL_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Jobs and activations run from seconds (an incremental sync) to an hour (a million-row import).
JOB_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

vendor_calls = Counter(
    "bastion_vendor_calls",
    "Vendor HTTP calls (every attempt) by connector, method and status class (2xx, 4xx, 5xx, or 'error' when no answer came).",
    ["connector", "method", "status_class"],
)
vendor_call_duration = Histogram(
    "bastion_vendor_call_duration_seconds",
    "Latency of one vendor HTTP attempt, by connector and status class.",
    ["connector", "status_class"],
    buckets=CALL_BUCKETS,
)
vendor_rate_limited = Counter(
    "bastion_vendor_rate_limited",
    "Vendor answers that asked Bastion to slow down (HTTP 429, Slack's ok:false ratelimited, Google's 403 rateLimitExceeded, quotas).",
    ["connector"],
)
vendor_retries = Counter(
    "bastion_vendor_retries",
    "Inline retries of a vendor call by the shared HTTP client, by the error class that caused them.",
    ["connector", "error"],
)

sync_jobs = Counter("bastion_sync_jobs", "Sync and import jobs that ended, by type, connector and outcome.", ["job_type", "connector", "outcome"])
sync_job_duration = Histogram(
    "bastion_sync_job_duration_seconds",
    "Sync and import job wall time from start to final status, by type, connector and outcome.",
    ["job_type", "connector", "outcome"],
    buckets=JOB_BUCKETS,
)
sync_records = Counter(
    "bastion_sync_records", "Records a sync stored, by connector and change (created, updated, unchanged, deleted).", ["connector", "change"]
)

webhook_intake = Counter(
    "bastion_webhook_intake",
    "Webhook deliveries answered by the intake endpoint, by outcome (accepted, duplicate, ignored, rejected) and HTTP status.",
    ["outcome", "status"],
)
webhook_processed = Counter("bastion_webhook_processed", "Webhook deliveries processed by a worker, by connector and outcome.", ["connector", "outcome"])
webhook_processing_lag = Histogram(
    "bastion_webhook_processing_lag_seconds",
    "Time from a delivery's receipt to the end of its processing by a worker.",
    ["connector"],
    buckets=LAG_BUCKETS,
)

playbook_steps = Counter(
    "bastion_playbook_steps",
    "Playbook step items that ended an attempt, by connector, action and outcome (succeeded, failed, retrying).",
    ["connector", "action", "outcome"],
)
playbook_step_duration = Histogram(
    "bastion_playbook_step_duration_seconds",
    "Playbook step item time from claim to recorded result, by connector, action and outcome.",
    ["connector", "action", "outcome"],
    buckets=CALL_BUCKETS,
)
playbook_runs = Counter("bastion_playbook_runs", "Playbook activations that finished, by outcome.", ["outcome"])
playbook_run_duration = Histogram(
    "bastion_playbook_run_duration_seconds", "Activation wall time, first step dispatched to last step finished.", ["outcome"], buckets=JOB_BUCKETS
)

oauth_refreshes = Counter("bastion_oauth_refreshes", "OAuth access-token refreshes that reached the token endpoint and succeeded.", ["connector"])
oauth_refresh_failures = Counter(
    "bastion_oauth_refresh_failures",
    "OAuth refreshes that failed: 'refused' and 'no_refresh_token' need a reconnect; 'transient' is retried.",
    ["connector", "reason"],
)


def status_class(status: int | None) -> str:
    """'2xx'…'5xx' for an HTTP status, 'error' when the call got no answer (timeout, connection refused)."""
    if not status:
        return "error"
    return f"{status // 100}xx"


def multiprocess_dir() -> str:
    """The directory shared by this host's processes, or '' in a single-process setup."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "") or os.environ.get("prometheus_multiproc_dir", "")
