#!/usr/bin/env bash
# `make test`: the shipped events run through the real Lambda runtime loop (cargo lambda watch
# + invoke) against a fresh database: each gets a batch response and the rows are loaded.
set -euo pipefail
cd "$(dirname "$0")/.."
server=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/login_etl}
export DATABASE_URL=${server%/*}/login_etl_invoke_test
psql -q -X "${server%/*}/postgres" -c "DROP DATABASE IF EXISTS login_etl_invoke_test WITH (FORCE)"
# The binaries of the test build (what `make test-rust` builds): one build of the code, not two
# with different features.
cargo test --quiet --no-run --lib --bins --tests
export LOGIN_ETL_PREBUILT=1
target/debug/login-etl-cli migrate

# What each event must yield (which records fail, and why) is tests/it/handler.rs's business: it
# calls the same `Function::invoke` the runtime loop does. This checks only what it cannot: the
# real runtime loop answers each event with an SQSBatchResponse, and the rows reach PostgreSQL.
out=$(scripts/invoke.sh events/batch.json events/mixed.json)
responses=$(grep -c '"batchItemFailures"' <<<"$out" || true)
[ "$responses" = 2 ] || { echo "expected 2 SQSBatchResponses from the runtime, got: $out" >&2; exit 1; }
rows=$(psql -tA -X "$DATABASE_URL" -c "SELECT count(*) FROM user_logins")
[ "$rows" = 14 ] || { echo "expected 14 rows (10 + 4), found $rows" >&2; exit 1; }
echo "lambda invoke: 14 rows loaded"
psql -q -X "${server%/*}/postgres" -c "DROP DATABASE IF EXISTS login_etl_invoke_test WITH (FORCE)"
