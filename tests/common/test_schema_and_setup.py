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


def test_a_fresh_databases_first_migrate_and_check_run_clean():
    """What `make demo` does first on a fresh clone: migrate an empty PostgreSQL database (with system checks, database ones included)."""
    import os
    import subprocess
    import sys
    import uuid
    from pathlib import Path

    import psycopg

    root = Path(__file__).resolve().parents[2]
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    name = f"bastion_fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {**os.environ, "DATABASE_URL": f"{base}/{name}"}
        for command in (["migrate", "--noinput", "-v0"], ["check", "--database", "default"]):
            done = subprocess.run([sys.executable, "manage.py", *command], cwd=root, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
