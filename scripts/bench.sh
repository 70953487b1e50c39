#!/usr/bin/env bash
# Run every benchmark on PostgreSQL + Redis and assemble benchmarks/RESULTS.md from their result files.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bastion_bench}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/10}"
export BASTION_ENCRYPTION_KEYS="${BASTION_ENCRYPTION_KEYS:-bench1:$(head -c 32 /dev/urandom | base64)}"
./scripts/services.sh
psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='bastion_bench'" | grep -q 1 || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE bastion_bench" >/dev/null
.venv/bin/python manage.py migrate --noinput -v0
mkdir -p benchmarks/results
for bench in benchmarks/bench_*.py; do
  echo "== $bench"
  .venv/bin/python "$bench"
done
.venv/bin/python benchmarks/assemble.py
echo "Results: benchmarks/RESULTS.md"
