"""Writes of the sync engine: jobs, the records store, webhooks, CSV import (public names re-exported here)."""

from sync.services.imports import csv_import_run, csv_import_start, csv_preview, csv_upload_store, people_export_rows
from sync.services.jobs import (
    StepOutcome,
    data_source_schedule_ensure,
    data_source_schedule_set,
    data_sources_ensure,
    integration_schedules_pause,
    integration_schedules_resume,
    job_log,
    schedules_paused_for_reconnect,
    sync_integration_start,
    sync_job_cancel,
    sync_job_step,
    sync_jobs_reap,
    sync_scheduled_run,
    sync_start,
)
from sync.services.records import content_hash, records_mark_deleted, records_upsert
from sync.services.webhooks import webhook_delivery_process, webhook_delivery_replay, webhook_receive

__all__ = [
    "StepOutcome",
    "content_hash",
    "csv_import_run",
    "csv_import_start",
    "csv_preview",
    "csv_upload_store",
    "data_source_schedule_ensure",
    "data_source_schedule_set",
    "data_sources_ensure",
    "integration_schedules_pause",
    "integration_schedules_resume",
    "schedules_paused_for_reconnect",
    "job_log",
    "people_export_rows",
    "records_mark_deleted",
    "records_upsert",
    "sync_integration_start",
    "sync_job_cancel",
    "sync_job_step",
    "sync_jobs_reap",
    "sync_scheduled_run",
    "sync_start",
    "webhook_delivery_process",
    "webhook_delivery_replay",
    "webhook_receive",
]
