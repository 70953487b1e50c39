"""Production settings: required variables fail loudly, HSTS and secure cookies are on (checked in a fresh process)."""

import base64
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import django
django.setup()
from django.conf import settings
from django.test import Client
response = Client().get("/healthz", secure=True, HTTP_HOST="bastion.example")
print(response.status_code, response.headers.get("Strict-Transport-Security"), settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE)
"""


def run_probe(extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BASTION_", "DJANGO_"))}
    # No .env file: production values come from the environment only.
    engine = {"DATABASE_URL": os.environ["DATABASE_URL"], "REDIS_URL": os.environ["REDIS_URL"]}
    env.update({"DJANGO_SETTINGS_MODULE": "bastion_site.settings", "BASTION_ENV_FILE": "/nonexistent/.env", **engine, **extra_env})
    for name in [k for k, v in env.items() if v is None]:
        env.pop(name)  # a test names a variable None to leave it out
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_production_refuses_to_start_without_its_secrets():
    result = run_probe({"BASTION_ENV": "production"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required in production" in result.stderr


def test_production_names_a_missing_database_or_redis():
    key = base64.b64encode(os.urandom(32)).decode()
    secrets = {"BASTION_ENV": "production", "DJANGO_SECRET_KEY": "x" * 50, "BASTION_ENCRYPTION_KEYS": f"p1:{key}"}
    for missing in ("DATABASE_URL", "REDIS_URL"):
        result = run_probe({**secrets, missing: None})
        assert result.returncode != 0
        assert f"{missing} is required in production" in result.stderr


def test_production_sets_hsts_and_secure_cookies():
    key = base64.b64encode(os.urandom(32)).decode()
    result = run_probe(
        {"BASTION_ENV": "production", "DJANGO_SECRET_KEY": "x" * 50, "BASTION_ENCRYPTION_KEYS": f"p1:{key}", "DJANGO_ALLOWED_HOSTS": "bastion.example"}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["200", "max-age=31536000", "True", "True"]
