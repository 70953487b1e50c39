#!/usr/bin/env bash
# Run the whole suite on PostgreSQL + Redis (started if they are down), with ruff first.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bastion}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
./scripts/services.sh
# The suite creates its own test database; the base one only has to exist for the migration and schema checks.
if command -v psql >/dev/null 2>&1; then
  db_name="${DATABASE_URL##*/}"; db_name="${db_name%%\?*}"
  psql "${DATABASE_URL%/*}/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname='${db_name}'" | grep -q 1 \
    || psql "${DATABASE_URL%/*}/postgres" -qc "CREATE DATABASE \"${db_name}\"" || true
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python manage.py makemigrations --check --dry-run >/dev/null
.venv/bin/python manage.py spectacular --validate --fail-on-warn --file /dev/null
exec .venv/bin/pytest "$@"
