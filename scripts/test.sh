#!/usr/bin/env bash
# Run the whole suite on PostgreSQL + Redis (started if they are down), with ruff first.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bastion}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
./scripts/services.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python manage.py makemigrations --check --dry-run >/dev/null
.venv/bin/python manage.py spectacular --validate --fail-on-warn --file /dev/null
exec .venv/bin/pytest "$@"
