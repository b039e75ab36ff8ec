#!/usr/bin/env bash
# `make test`: the shipped events run through the real Lambda runtime loop (cargo lambda watch
# + invoke) against a fresh database, and the responses and rows are what they must be.
set -euo pipefail
cd "$(dirname "$0")/.."
server=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/login_etl}
export DATABASE_URL=${server%/*}/login_etl_invoke_test
psql -q -X "${server%/*}/postgres" -c "DROP DATABASE IF EXISTS login_etl_invoke_test WITH (FORCE)"
cargo build --quiet --bins
target/debug/login-etl-cli migrate

out=$(scripts/invoke.sh events/batch.json events/mixed.json)
python3 - "$out" <<'PY'
import json, sys
decoder, text, responses = json.JSONDecoder(), sys.argv[1], []
i = 0
while i < len(text):
    if text[i] in " \n\r\t":
        i += 1
        continue
    value, i = decoder.raw_decode(text, i)
    responses.append(value)
assert len(responses) == 2, responses
batch, mixed = (r["batchItemFailures"] for r in responses)
assert batch == [], f"events/batch.json: every record loads, got {batch}"
events = json.load(open("events/mixed.json"))["Records"]
ids = {r["messageId"] for r in events}
failed = {f["itemIdentifier"] for f in mixed}
assert len(failed) == 6 and failed <= ids, f"events/mixed.json: 6 named failures, got {mixed}"
print("lambda invoke: batch.json 0 failures, mixed.json 6 failures")
PY
rows=$(psql -tA -X "$DATABASE_URL" -c "SELECT count(*) FROM user_logins")
[ "$rows" = 14 ] || { echo "expected 14 rows (10 + 4), found $rows" >&2; exit 1; }
echo "lambda invoke: 14 rows loaded"
psql -q -X "${server%/*}/postgres" -c "DROP DATABASE IF EXISTS login_etl_invoke_test WITH (FORCE)"
