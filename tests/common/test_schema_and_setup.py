import io

import pytest
from django.core.management import call_command
from django.test import Client


def test_openapi_schema_validates_without_warnings():
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    assert "openapi: 3" in out.getvalue()


def test_swagger_ui_is_served_without_a_cdn(db):
    html = Client().get("/api/docs/").content.decode()
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html
    assert "/static/drf_spectacular_sidecar/" in html


def test_error_envelope_on_404(api):
    body = api.get("/api/members/00000000-0000-0000-0000-000000000000/").json()
    assert body["error"]["code"] == "not_found"


def test_pages_require_sign_in(db):
    response = Client().get("/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_security_headers(db):
    response = Client().get("/accounts/login/")
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_demo_command_creates_organization_and_admin(db, monkeypatch):
    monkeypatch.setenv("BASTION_DEMO_PASSWORD", "demo-Pass-123")
    out = io.StringIO()
    call_command("bastion_demo", stdout=out)
    assert "username: admin   password: demo-Pass-123" in out.getvalue()
    assert Client().login(username="admin", password="demo-Pass-123")


@pytest.mark.parametrize("path", ["/admin/", "/api/schema/"])
def test_admin_and_schema_answer_for_staff(admin_client, path):
    assert admin_client.get(path).status_code == 200


def test_the_demo_databases_first_migrate_and_check_run_clean(tmp_path):
    """What `make demo` does first on a fresh clone: migrate an empty SQLite file (with system checks, database ones included)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"}
    env.pop("REDIS_URL", None)
    for command in (["migrate", "--noinput", "-v0"], ["check", "--database", "default"]):
        done = subprocess.run([sys.executable, "manage.py", *command], cwd=root, env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
