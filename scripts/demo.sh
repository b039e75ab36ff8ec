#!/usr/bin/env bash
# `make demo`: the whole job on this machine, against LocalStack SQS and PostgreSQL (started by
# `make up`): migrate, create the queue + DLQ + secrets, send realistic messages (some
# malformed), drain them through the Lambda handler, and show what happened.
# Tunables: DEMO_COUNT (default 1000), DEMO_BAD_RATIO (0.05), DEMO_UNKNOWN_KEY_RATIO (0.02: the
# share of valid messages that also carry keys the function does not know), DEMO_CONCURRENCY (2),
# DEMO_QUEUE_NAME (login-queue) and DEMO_SECRET_PREFIX (login-etl: the secrets
# <prefix>/db and <prefix>/masking-key).
set -euo pipefail
cd "$(dirname "$0")/.."
cli=target/debug/login-etl-cli
count=${DEMO_COUNT:-1000}
bad_ratio=${DEMO_BAD_RATIO:-0.05}
unknown_key_ratio=${DEMO_UNKNOWN_KEY_RATIO:-0.02}
concurrency=${DEMO_CONCURRENCY:-2}
queue_name=${DEMO_QUEUE_NAME:-login-queue}
db_secret=${DEMO_SECRET_PREFIX:-login-etl}/db
key_secret=${DEMO_SECRET_PREFIX:-login-etl}/masking-key
# A short visibility timeout so failed messages are retried (and dead-lettered after 5
# receives) within seconds; the SAM template uses 6x the function timeout.
visibility=2

# Bold headings only on a terminal and without NO_COLOR (https://no-color.org).
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

step "Migrating $DATABASE_URL"
$cli migrate

step "Creating the queue, its dead-letter queue and the secrets in LocalStack ($AWS_ENDPOINT_URL)"
setup=$($cli setup --queue-name "$queue_name" --visibility-timeout "$visibility" --max-receive-count 5 \
  --db-secret-id "$db_secret" --masking-key-secret-id "$key_secret")
echo "$setup"
queue_url=$(awk '$1 == "queue" {print $2}' <<<"$setup")
dlq_url=$(awk '$1 == "dlq" {print $2}' <<<"$setup")

# What was there before this run: the queue and database are fixed names, so earlier runs'
# rows and dead letters stay, and the summary below tells them apart from this run's.
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
queue_total() { $cli depth --json --queue-url "$1" | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["visible"] + d["in_flight"] + d["delayed"])'; }
rows_before=$($cli report --json --limit 0 | json_field total_rows)
dead_before=$(queue_total "$dlq_url")
queued_before=$(queue_total "$queue_url")

step "Sending $count messages (about $(awk "BEGIN {print $bad_ratio * 100}")% malformed, a few with keys the function does not know)"
sent=$($cli send --json --queue-url "$queue_url" --count "$count" --bad-ratio "$bad_ratio" \
  --unknown-key-ratio "$unknown_key_ratio" --seed "$RANDOM")
malformed=$(json_field malformed <<<"$sent")
drifted=$(json_field with_unknown_keys <<<"$sent")
echo "sent $count messages, $malformed of them malformed, $drifted with keys the function does not know"
echo "(os_version, schema_version: a producer ahead of the schema, schema/login-event.schema.json)"

step "Draining with $concurrency pollers (the same handler Lambda runs; failures wait for the redrive)"
# The function reads its database and masking key from Secrets Manager, as in AWS.
# Exit status 3 would mean failing messages stuck on a queue without a DLQ; this one has one.
# The summary is kept too: its "unknown keys" line is the run's UnknownFieldRecords.
drain_summary=$(mktemp)
trap 'rm -f "$drain_summary"' EXIT
DB_SECRET_ID=$db_secret MASKING_KEY_SECRET_ID=$key_secret DATABASE_URL='' MASKING_KEY='' \
  $cli drain --queue-url "$queue_url" --concurrency "$concurrency" | tee "$drain_summary"
unknown_records=$(awk '$1 == "unknown" && $2 == "keys" {print $3}' "$drain_summary")
echo "(\"received\" and the first reason column count deliveries: each malformed message is received"
echo " 5 times, its queue's maxReceiveCount, before SQS moves it to the DLQ; \"messages\" counts it once.)"

step "What was loaded (PII masked)"
$cli report --limit 5

rows_after=$($cli report --json --limit 0 | json_field total_rows)
dead_after=$(queue_total "$dlq_url")
step "This run"
echo "sent           $count messages ($malformed malformed)"
echo "loaded         $((rows_after - rows_before)) new rows"
echo "dead-lettered  $((dead_after - dead_before)) messages"
echo "unknown keys   ${unknown_records:-0} loaded records carried keys the function does not know (UnknownFieldRecords;"
echo "               names only in the log, values never stored: docs/schema.md)"
if [ "$rows_before" -gt 0 ] || [ "$dead_before" -gt 0 ] || [ "$queued_before" -gt 0 ]; then
  echo "already there before this run: $rows_before rows in user_logins, $dead_before dead letters in the DLQ,"
  echo "$queued_before messages on the queue (earlier runs: the demo reuses $queue_name and its database)."
  echo "Totals now: $rows_after rows, $dead_after dead letters."
fi

step "Queues after the run"
$cli depth --queue-url "$queue_url"
$cli depth --queue-url "$dlq_url"
echo
echo "The malformed messages are in the DLQ. Why each one failed: the drain logs one line per failed"
echo "record with its message_id and reason (RUST_LOG=info); docs/operations.md has the details."
echo "Replay them after a fix (from this directory, in any shell):"
printf '  %s\n' "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_REGION=$AWS_REGION AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID \\"
printf '  %s\n' "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY DB_SECRET_ID=$db_secret MASKING_KEY_SECRET_ID=$key_secret \\"
printf '  %s\n' "$cli drain --queue-url $dlq_url"
echo "(Until the fix it exits 3: the same messages fail again, and the DLQ has no DLQ of its own.)"
