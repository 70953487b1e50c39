#!/usr/bin/env bash
# One command: migrate, seed a demo organization and admin, start the sandbox and Bastion.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SANDBOX_PORT="${SANDBOX_PORT:-8765}"
export SANDBOX_SMTP_PORT="${SANDBOX_SMTP_PORT:-2525}"
PORT="${PORT:-8000}"
export BASTION_SANDBOX_URL="${BASTION_SANDBOX_URL:-http://127.0.0.1:${SANDBOX_PORT}}"
export BASTION_PUBLIC_URL="${BASTION_PUBLIC_URL:-http://127.0.0.1:${PORT}}"
$PY manage.py migrate --noinput -v0
$PY manage.py collectstatic --noinput -v0
$PY -m sandbox --port "$SANDBOX_PORT" --smtp-port "$SANDBOX_SMTP_PORT" > /tmp/bastion-sandbox.log 2>&1 &
SANDBOX_PID=$!
trap 'kill $SANDBOX_PID 2>/dev/null || true' EXIT
LOG_LEVEL=WARNING $PY manage.py bastion_demo
echo "Vendor sandbox: ${BASTION_SANDBOX_URL}/  (log: /tmp/bastion-sandbox.log)"
$PY manage.py runserver "127.0.0.1:${PORT}"
