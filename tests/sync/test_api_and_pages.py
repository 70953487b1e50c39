"""API and pages: triggers (202 new / 200 already running), roles, tenancy (another organization's objects are 404), metrics, dashboard."""

from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask

from accounts.models import Role
from integrations.models import DataSource
from sync import services
from sync.models import DataSyncJob, JobStatus, WebhookDelivery

pytestmark = pytest.mark.django_db


def test_integration_sync_starts_every_data_source_then_reports_running(api_for, users_by_role, directory, django_capture_on_commit_callbacks):
    editor = api_for(users_by_role[Role.EDITOR])
    response = editor.post(f"/api/integrations/{directory.pk}/sync", {}, format="json")  # not run: on_commit not executed
    assert response.status_code == 202
    body = response.json()
    assert body["already_running"] is False and sorted(j["entity_type"] for j in body["jobs"]) == ["groups", "people"]
    assert all(j["status"] == "pending" and j["already_running"] is False for j in body["jobs"])

    again = editor.post(f"/api/integrations/{directory.pk}/sync", {}, format="json")
    assert again.status_code == 200 and again.json()["already_running"] is True
    assert {j["id"] for j in again.json()["jobs"]} == {j["id"] for j in body["jobs"]}
    assert DataSyncJob.objects.count() == 2


def test_data_source_sync_runs_and_job_api_shows_progress_and_log(api, people_source, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/data-sources/{people_source.pk}/sync", {"full_refresh": True}, format="json")
    assert response.status_code == 202
    job_id = response.json()["jobs"][0]["id"]
    job = api.get(f"/api/sync-jobs/{job_id}/").json()
    assert (job["status"], job["records_processed"], job["pages"], job["created_count"], job["entity_type"]) == ("succeeded", 20, 3, 20, "people")
    log = api.get(f"/api/sync-jobs/{job_id}/log/").json()["results"]
    assert [line["event"] for line in log][-1] == "job.succeeded"
    assert all("token" not in line["message"].lower() for line in log)
    listed = api.get("/api/sync-jobs/?status=succeeded").json()
    assert [j["id"] for j in listed["results"]] == [job_id]


def test_only_one_data_source_with_query_param(api, directory, people_source):
    response = api.post(f"/api/integrations/{directory.pk}/sync?data_source={people_source.pk}", {}, format="json")
    assert response.status_code == 202 and [j["entity_type"] for j in response.json()["jobs"]] == ["people"]


def test_roles_viewer_reads_editor_syncs_admin_schedules(api_for, users_by_role, directory, people_source):
    viewer, editor, admin = (api_for(users_by_role[r]) for r in (Role.VIEWER, Role.EDITOR, Role.ADMIN))
    assert viewer.post(f"/api/integrations/{directory.pk}/sync", {}, format="json").status_code == 403
    assert viewer.post(f"/api/data-sources/{people_source.pk}/sync", {}, format="json").status_code == 403
    assert viewer.get("/api/sync-jobs/").status_code == 200 and viewer.get("/api/sync-metrics/").status_code == 200
    job = services.sync_start(data_source=people_source)
    assert viewer.post(f"/api/sync-jobs/{job.pk}/cancel/").status_code == 403
    assert editor.post(f"/api/sync-jobs/{job.pk}/cancel/").status_code == 200
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and editor.post(f"/api/sync-jobs/{job.pk}/cancel/").status_code == 409

    assert editor.put(f"/api/data-sources/{people_source.pk}/schedule", {"every_seconds": 300}, format="json").status_code == 403
    response = admin.put(f"/api/data-sources/{people_source.pk}/schedule", {"crontab": "*/5 * * * *"}, format="json")
    assert response.status_code == 200 and response.json()["crontab"] and response.json()["interval_seconds"] is None
    task = PeriodicTask.objects.get(name=f"sync:{people_source.pk}")
    assert task.crontab.minute == "*/5" and task.interval is None and task.args == f'["{people_source.pk}"]'
    assert admin.put(f"/api/data-sources/{people_source.pk}/schedule", {"crontab": "bad"}, format="json").status_code == 400


def test_other_organizations_objects_are_404(api_for, outsider, directory, people_source, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.sync_start(data_source=people_source)
    delivery = WebhookDelivery.objects.create(
        organization=directory.organization, integration=directory, delivery_id="d1", received_at=job.created_at, events=[]
    )
    stranger = api_for(outsider)
    assert stranger.get(f"/api/sync-jobs/{job.pk}/").status_code == 404
    assert stranger.get(f"/api/sync-jobs/{job.pk}/log/").status_code == 404
    assert stranger.get("/api/sync-jobs/").json()["results"] == []
    assert stranger.post(f"/api/integrations/{directory.pk}/sync", {}, format="json").status_code == 404
    assert stranger.post(f"/api/data-sources/{people_source.pk}/sync", {}, format="json").status_code == 404
    assert stranger.get(f"/api/webhook-deliveries/{delivery.pk}/").status_code == 404
    assert stranger.post(f"/api/webhook-deliveries/{delivery.pk}/replay/").status_code == 404
    assert stranger.get("/api/people/").json()["results"] == []
    assert [i["display_name"] for i in stranger.get("/api/sync-metrics/").json()["integrations"]] == []
    client.force_login(outsider)
    assert client.get(f"/integrations/status/jobs/{job.pk}/").status_code == 404
    assert client.post(f"/integrations/status/refresh/{people_source.pk}").status_code == 404


def test_metrics_against_targets(api, people_source, directory, run_sync, sandbox):
    from tests.sync.conftest import set_faults

    run_sync(people_source)
    set_faults(sandbox, down=True)
    run_sync(DataSource.objects.get(integration=directory, entity_type="groups"))
    metrics = api.get("/api/sync-metrics/").json()
    assert metrics["targets"] == {"sync_success_rate": 0.95, "api_error_rate": 0.01, "freshness_seconds": 300}
    row = metrics["integrations"][0]
    assert row["syncs"] == 2 and row["sync_success_rate"] == 0.5 and row["sync_success_met"] is False
    assert row["api_calls"] >= 4 and row["api_error_rate"] > 0.01 and row["api_error_met"] is False
    assert row["freshness_met"] is False  # the groups source never synced successfully
    assert metrics["overall"]["sync_success_rate"] == 0.5


def test_status_dashboard_and_refresh_now(client, users_by_role, people_source, run_sync, django_capture_on_commit_callbacks):
    run_sync(people_source)
    client.force_login(users_by_role[Role.VIEWER])
    page = client.get("/integrations/status/")
    html = page.content.decode()
    assert page.status_code == 200 and "Directory" in html and "of syncs succeeded" in html and 'data-job="' in html
    assert 'id="freshness-chart"' in html and "5-minute target" in html and 'class="fresh-bar"' in html and 'id="records-chart"' in html  # inline SVG
    assert "Sync now" not in html  # viewers see, editors refresh
    assert client.post(f"/integrations/status/refresh/{people_source.pk}").status_code == 403

    client.force_login(users_by_role[Role.EDITOR])
    assert "Sync now" in client.get("/integrations/status/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/integrations/status/refresh/{people_source.pk}")
    assert response.status_code == 302 and DataSyncJob.objects.filter(data_source=people_source, trigger="manual").count() == 2
    detail = client.get(f"/integrations/status/jobs/{DataSyncJob.objects.first().pk}/")
    assert detail.status_code == 200 and "page.stored" in detail.content.decode()


def test_people_pages_and_csv_import_flow(client, users_by_role, people_source, run_sync, organization, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from people.models import Person

    run_sync(people_source)
    client.force_login(users_by_role[Role.EDITOR])
    listing = client.get("/people/?q=security")
    assert listing.status_code == 200 and "Marcus Okafor" in listing.content.decode() and "Ava Chen" not in listing.content.decode()
    marcus = Person.objects.get(email="marcus.okafor@acme.example")
    detail = client.get(f"/people/{marcus.pk}/").content.decode()
    assert "sandbox_directory" in detail and "p000002" in detail and "Ava Chen" in detail

    uploaded = client.post("/people/import/", {"file": SimpleUploadedFile("team.csv", b"Email;Name\nnew@acme.example;New Person\nbad;Bad\n")})
    assert uploaded.status_code == 302
    mapping_page = client.get(uploaded["Location"])
    assert mapping_page.status_code == 200 and "semicolon" in mapping_page.content.decode()
    missing = client.post(uploaded["Location"], {"map_email": "", "map_name": "Name"})
    assert missing.status_code == 200 and "Map a column to email" in missing.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(uploaded["Location"], {"map_email": "Email", "map_name": "Name"})
    assert done.status_code == 302
    job_page = client.get(done["Location"]).content.decode()
    assert "Line 3: email &#x27;bad&#x27; is not an email address" in job_page
    assert Person.objects.filter(email="new@acme.example").exists()
    assert client.get("/people/export.csv").status_code == 200


def test_freshness_chart_against_the_target(organization, people_source):
    from datetime import timedelta

    from django.utils import timezone

    from sync.charts import freshness_chart

    type(people_source).objects.filter(pk=people_source.pk).update(last_synced_at=timezone.now() - timedelta(minutes=12))
    chart = freshness_chart(organization=organization)
    bar = next(b for b in chart["bars"] if "people" in b["label"])
    assert bar["state"] == "bad" and bar["value"] == "12 min" and bar["bar300"] == 240  # 12 of 15 minutes; the target sits at 100
    type(people_source).objects.filter(pk=people_source.pk).update(last_synced_at=None)
    bar = next(b for b in freshness_chart(organization=organization)["bars"] if "people" in b["label"])
    assert bar == {**bar, "state": "none", "value": "never synced", "bar300": 0}
