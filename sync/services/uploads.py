"""Where uploaded CSV files live and how long: a private folder per organization, deleted when no import needs them."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts.models import Organization
from common.validators import is_uuid
from sync.models import ACTIVE_JOB_STATUSES, DataSyncJob, JobType

logger = logging.getLogger(__name__)
UPLOAD_GRACE_HOURS = 24  # an upload no import used is kept this long (BASTION_CSV_UPLOAD_GRACE_HOURS overrides)


def _upload_dir(organization: Organization) -> Path:
    return Path(settings.MEDIA_ROOT) / "imports" / str(organization.pk)


@dataclass(frozen=True)
class UploadCleanup:
    """What a cleanup of stored uploads did: counts only, never file names or upload ids."""

    deleted: int = 0
    held_by_active_import: int = 0  # pending or running: the reaper may still resume it from its committed position
    kept_within_grace: int = 0  # never used by an import, younger than the grace


def _upload_grace() -> timedelta:
    return timedelta(hours=float(getattr(settings, "BASTION_CSV_UPLOAD_GRACE_HOURS", None) or UPLOAD_GRACE_HOURS))


def _uploads_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "imports"


def _upload_id_of(path: Path) -> str:
    """The upload id a stored file is named by; "" for a file that is not an upload's (kept only within the grace)."""
    try:
        return str(uuid.UUID(path.stem)) if path.suffix == ".csv" else ""
    except ValueError:
        return ""


def _import_statuses(organization_id: Any, upload_ids: list[str]) -> dict[str, set[str]]:
    """The statuses of the imports that used each upload (an upload may be imported more than once)."""
    statuses: dict[str, set[str]] = {}
    for start in range(0, len(upload_ids), 1000):
        rows = DataSyncJob.objects.filter(
            organization_id=organization_id, job_type=JobType.IMPORT, metadata__upload_id__in=upload_ids[start : start + 1000]
        ).values_list("metadata__upload_id", "status")
        for upload_id, status in rows:
            statuses.setdefault(str(upload_id), set()).add(status)
    return statuses


def _stored_files(directory: Path) -> list[Path]:
    try:
        return [entry for entry in directory.iterdir() if entry.is_file()]
    except FileNotFoundError:
        return []


def _upload_release(job: DataSyncJob) -> None:
    """Delete an ended import's upload unless another active import of the organization reads the same file."""
    upload_id = str(job.metadata.get("upload_id", ""))
    if not upload_id or _upload_id_of(Path(f"{upload_id}.csv")) != upload_id:
        return
    if DataSyncJob.objects.filter(
        organization_id=job.organization_id, job_type=JobType.IMPORT, status__in=ACTIVE_JOB_STATUSES, metadata__upload_id=upload_id
    ).exists():
        return
    (_uploads_root() / str(job.organization_id) / f"{upload_id}.csv").unlink(missing_ok=True)


def _uploads_clean(directory: Path, *, organization_id: Any, keep_unused_after: datetime | None) -> UploadCleanup:
    """Delete the directory's uploads no active import holds; one never imported goes only if older than `keep_unused_after` (None: always)."""
    files = _stored_files(directory)
    statuses = _import_statuses(organization_id, [upload_id for upload_id in map(_upload_id_of, files) if upload_id])
    deleted = held = kept = 0
    for path in files:
        used_by = statuses.get(_upload_id_of(path), set())
        if used_by & set(ACTIVE_JOB_STATUSES):
            held += 1
            continue
        if not used_by and keep_unused_after is not None:
            try:
                modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
            except FileNotFoundError:
                continue
            if modified >= keep_unused_after:
                kept += 1
                continue
        path.unlink(missing_ok=True)
        deleted += 1
    return UploadCleanup(deleted=deleted, held_by_active_import=held, kept_within_grace=kept)


def csv_uploads_sweep(*, now: datetime | None = None) -> UploadCleanup:
    """Delete stored uploads no import needs: those of ended imports at once, those never imported once older than the grace.

    An upload an active import holds stays, even when its worker died: the reaper resumes it from its committed position.
    """
    now = now or timezone.now()
    totals = UploadCleanup()
    root = _uploads_root()
    directories = [entry for entry in root.iterdir() if entry.is_dir()] if root.is_dir() else []
    for directory in directories:
        organization_id = directory.name if is_uuid(directory.name) else None
        if organization_id is None:
            continue
        done = _uploads_clean(directory, organization_id=organization_id, keep_unused_after=now - _upload_grace())
        totals = UploadCleanup(
            deleted=totals.deleted + done.deleted,
            held_by_active_import=totals.held_by_active_import + done.held_by_active_import,
            kept_within_grace=totals.kept_within_grace + done.kept_within_grace,
        )
    logger.info(
        "sync.csv_uploads.swept",
        extra={"deleted": totals.deleted, "held_by_active_import": totals.held_by_active_import, "kept_within_grace": totals.kept_within_grace},
    )
    return totals


def csv_uploads_purge(*, organization: Organization) -> UploadCleanup:
    """Delete every stored upload of the organization no active import holds, whatever its age (a person's erasure)."""
    done = _uploads_clean(_upload_dir(organization), organization_id=organization.pk, keep_unused_after=None)
    logger.info(
        "sync.csv_uploads.purged", extra={"organization": str(organization.pk), "deleted": done.deleted, "held_by_active_import": done.held_by_active_import}
    )
    return done
