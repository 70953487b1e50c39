"""What a CSV import reports besides rejected rows: per-line warnings (surplus cells, cut texts) and manager links left unset."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.db import connection

from sync.models import DataSyncJob, SyncJobLog

MANAGER_REPORT_CAP = 1000  # lines named one by one; the total is always counted
CSV_SOURCE = "csv"


def email_digest(email: str) -> str:
    """A keyed digest of a normalised address: lets a manager link be matched to a rejected row without storing the address."""
    normalised = str(email or "").strip().lower()
    if not normalised:
        return ""
    return hmac.new(settings.SECRET_KEY.encode(), normalised.encode(), hashlib.sha256).hexdigest()[:32]


def _warnings_count_add(job: DataSyncJob, count: int) -> None:
    # An atomic JSON increment: batches of a resumed run and the final report may add concurrently with other metadata writes.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE sync_datasyncjob SET metadata = metadata || jsonb_build_object('warnings', COALESCE((metadata->>'warnings')::int, 0) + %s) WHERE id = %s",
            [count, job.pk],
        )


def import_warnings_log(job: DataSyncJob, warnings: list[tuple[int, str, str]]) -> None:
    """Log one warning per (line, field, message) and count them on the job (metadata["warnings"])."""
    SyncJobLog.objects.bulk_create(
        [
            SyncJobLog(
                job=job,
                level="warning",
                event="csv.row_warning",
                message=f"Line {line}: {message}",
                data={"line": line, "warning": message, **({"field": field_name} if field_name else {})},
            )
            for line, field_name, message in sorted(warnings)
        ]
    )
    _warnings_count_add(job, len(warnings))


def manager_links_report(job: DataSyncJob) -> int:
    """After managers are linked: warn, by line, for each imported person whose manager's row was rejected or is nobody known.

    Names lines, never addresses (the manager may be an erased data subject). Returns how many links are unset.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (i.attributes->>'_line')::int, i.attributes->>'manager_email' FROM sync_personidentity i JOIN sync_person p ON p.id = i.person_id "
            "WHERE i.organization_id = %(org)s AND i.source = %(source)s AND i.integration_id IS NULL AND i.attributes->>'_import_job' = %(job)s "
            "AND p.manager_id IS NULL AND COALESCE(i.attributes->>'manager_email', '') NOT IN ('', p.email) ORDER BY 1",
            {"org": job.organization_id, "source": CSV_SOURCE, "job": str(job.pk)},
        )
        unset = cursor.fetchall()
    if not unset:
        return 0
    named = unset[:MANAGER_REPORT_CAP]
    digests = {email_digest(email) for _, email in named}
    rejected: dict[str, tuple[int, str]] = {}
    for data in SyncJobLog.objects.filter(job=job, event="csv.row_rejected", data__email_digest__in=digests).order_by("id").values_list("data", flat=True):
        rejected.setdefault(data["email_digest"], (int(data["line"]), str(data.get("reason", ""))))
    warnings = []
    for line, email in named:
        cause = rejected.get(email_digest(email))
        if cause:
            message = f"its manager's row (line {cause[0]}) was rejected ({cause[1]}); no manager link is set"
        else:
            message = "no imported or known person has its manager's email; no manager link is set"
        warnings.append((line, "manager_email", message))
    import_warnings_log(job, warnings)
    if len(unset) > len(named):
        SyncJobLog.objects.create(
            job=job,
            level="warning",
            event="csv.manager_links_unset",
            message=f"{len(unset)} people have a manager that was not imported; the first {len(named)} are listed by line.",
            data={"count": len(unset)},
        )
        _warnings_count_add(job, len(unset) - len(named))
    return len(unset)


def import_warnings(job: DataSyncJob) -> int:
    """The job's warning count (surplus cells, cut texts, unset manager links)."""
    return int((job.metadata or {}).get("warnings", 0))
