#!/usr/bin/env bash
# `make demo`: the whole job on this machine, against LocalStack SQS and PostgreSQL (started by
# `make up`): migrate, create the queue + DLQ + secrets, send realistic messages (some
# malformed), drain them through the Lambda handler, and show what happened.
# Tunables: DEMO_COUNT (default 1000), DEMO_BAD_RATIO (0.05), DEMO_CONCURRENCY (2).
set -euo pipefail
cd "$(dirname "$0")/.."
cli=target/debug/login-etl-cli
count=${DEMO_COUNT:-1000}
bad_ratio=${DEMO_BAD_RATIO:-0.05}
concurrency=${DEMO_CONCURRENCY:-2}
# A short visibility timeout so failed messages are retried (and dead-lettered after 5
# receives) within seconds; the SAM template uses 6x the function timeout.
visibility=2

# Bold headings only on a terminal and without NO_COLOR (https://no-color.org).
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

step "Migrating $DATABASE_URL"
$cli migrate

step "Creating the queue, its dead-letter queue and the secrets in LocalStack ($AWS_ENDPOINT_URL)"
setup=$($cli setup --queue-name login-queue --visibility-timeout "$visibility" --max-receive-count 5)
echo "$setup"
queue_url=$(awk '$1 == "queue" {print $2}' <<<"$setup")
dlq_url=$(awk '$1 == "dlq" {print $2}' <<<"$setup")

step "Sending $count messages (about $(awk "BEGIN {print $bad_ratio * 100}")% malformed)"
$cli send --queue-url "$queue_url" --count "$count" --bad-ratio "$bad_ratio" --seed "$RANDOM"

step "Draining with $concurrency pollers (the same handler Lambda runs; failures wait for the redrive)"
# The function reads its database and masking key from Secrets Manager, as in AWS.
# Exit status 3 would mean failing messages stuck on a queue without a DLQ; this one has one.
DB_SECRET_ID=login-etl/db MASKING_KEY_SECRET_ID=login-etl/masking-key DATABASE_URL='' MASKING_KEY='' \
  $cli drain --queue-url "$queue_url" --concurrency "$concurrency"

step "What was loaded (PII masked)"
$cli report --limit 5

step "Queues after the run"
$cli depth --queue-url "$queue_url"
$cli depth --queue-url "$dlq_url"
echo
echo "The malformed messages are in the DLQ; replay them after a fix with:"
echo "  $cli drain --queue-url $dlq_url"
