#!/usr/bin/env bash
# Refreshes the offline query cache `.sqlx/` that lets `sqlx::query!` compile without a
# database: applies migrations/ to a scratch database, then rebuilds with SQLX_OFFLINE_DIR set
# (what `cargo sqlx prepare` does), without needing sqlx-cli installed.
# Usage: scripts/sqlx-prepare.sh   (PG* / ADMIN_DATABASE_URL select the server; default local)
set -euo pipefail
cd "$(dirname "$0")/.."
admin_url=${ADMIN_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
# A name of its own per run, so two checkouts can refresh their caches at the same time.
scratch=login_etl_sqlx_prepare_$$
psql -q -X -v ON_ERROR_STOP=1 "$admin_url" -c "DROP DATABASE IF EXISTS $scratch" -c "CREATE DATABASE $scratch"
scratch_url=${admin_url%/*}/$scratch
for migration in migrations/*.sql; do
  psql -q -X -1 -v ON_ERROR_STOP=1 "$scratch_url" -f "$migration"   # one transaction each, as sqlx applies them
done
rm -rf .sqlx && mkdir .sqlx
find src -name "*.rs" -exec touch {} +
SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$PWD/.sqlx" DATABASE_URL="$scratch_url" cargo check --all-targets --quiet
psql -q -X "$admin_url" -c "DROP DATABASE IF EXISTS $scratch"
echo "sqlx-prepare: $(find .sqlx -name 'query-*.json' | wc -l) queries cached in .sqlx/"
