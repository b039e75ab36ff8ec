#!/usr/bin/env bash
# The Lambda development loop without Docker: `cargo lambda watch` runs the function behind a
# local Lambda Runtime API, `cargo lambda invoke` sends it an event file (what
# `sam local invoke -e FILE` does with Docker). Prints the function's SQSBatchResponse.
# Usage: scripts/invoke.sh [EVENT_FILE...]   (default events/batch.json)
# The function reads DATABASE_URL / MASKING_KEY etc. from this environment (`make invoke`
# sets local defaults). CARGO_LAMBDA_PORT picks the port (default 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/tools.sh install
PATH="$(scripts/tools.sh path):$PATH"
export PATH
port=${CARGO_LAMBDA_PORT:-9000}
[ $# -gt 0 ] || set -- events/batch.json
mkdir -p .run

watch_pid=
if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "invoke.sh: starting cargo lambda watch on port $port (log: .run/cargo-lambda-watch.log)" >&2
  cargo lambda watch --invoke-port "$port" >.run/cargo-lambda-watch.log 2>&1 &
  watch_pid=$!
  trap 'kill "$watch_pid" 2>/dev/null; wait "$watch_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 1 120); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$watch_pid" 2>/dev/null || { cat .run/cargo-lambda-watch.log >&2; exit 1; }
    sleep 0.5
  done
fi

for event in "$@"; do
  echo "invoke.sh: $event" >&2
  cargo lambda invoke login-etl --invoke-port "$port" --data-file "$event"
  echo
done
