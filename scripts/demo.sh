#!/usr/bin/env bash
# One command: Bastion on the production engine from wheels (embedded PostgreSQL and Redis, a Celery worker pool and
# beat, gunicorn with DEBUG off) beside the vendor sandbox, with a demo organization; Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m bastion_site.demo "$@"
