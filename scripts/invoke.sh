#!/usr/bin/env bash
# The Lambda development loop without Docker: `cargo lambda watch` serves a local Lambda
# Runtime API, the function runs against it, `cargo lambda invoke` sends it an event file
# (what `sam local invoke -e FILE` does with Docker). Prints the function's SQSBatchResponse.
# Usage: scripts/invoke.sh [EVENT_FILE...]   (default events/batch.json)
#
# The function gets exactly this shell's environment (DATABASE_URL, MASKING_KEY, ...; `make
# invoke` sets local defaults). That is why it is started here, behind
# `cargo lambda watch --only-lambda-apis`, rather than by `cargo lambda watch` itself: cargo
# lambda gives Cargo.toml's [package.metadata.lambda.watch.env] (the defaults for a plain
# `cargo lambda watch`) precedence over the shell, --env-var and --env-file alike.
# CARGO_LAMBDA_PORT picks the port (default 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/tools.sh install
PATH="$(scripts/tools.sh path):$PATH"
export PATH
port=${CARGO_LAMBDA_PORT:-9000}
[ $# -gt 0 ] || set -- events/batch.json
mkdir -p .run
# LOGIN_ETL_PREBUILT=1: target/debug/login-etl is already built (make test builds it once, with
# the test build's features, and would otherwise rebuild it here with others).
[ "${LOGIN_ETL_PREBUILT:-}" = 1 ] || cargo build --quiet --bin login-etl

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
if answers; then
  echo "invoke.sh: port $port is taken; set CARGO_LAMBDA_PORT to a free port" >&2
  exit 1
fi
echo "invoke.sh: cargo lambda watch --only-lambda-apis on port $port (log: .run/cargo-lambda-watch.log)" >&2
cargo lambda watch --invoke-port "$port" --only-lambda-apis >.run/cargo-lambda-watch.log 2>&1 &
watch_pid=$!
function_pid=
trap 'kill $function_pid "$watch_pid" 2>/dev/null; wait $function_pid "$watch_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  answers && break
  kill -0 "$watch_pid" 2>/dev/null || { cat .run/cargo-lambda-watch.log >&2; exit 1; }
  sleep 0.5
done
# What cargo lambda watch sets for a function it starts itself (`_`: the default function).
AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt" AWS_LAMBDA_FUNCTION_NAME=_ \
  AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 \
  target/debug/login-etl >.run/login-etl-function.log 2>&1 &
function_pid=$!
echo "invoke.sh: function log: .run/login-etl-function.log" >&2

for event in "$@"; do
  echo "invoke.sh: $event" >&2
  cargo lambda invoke --invoke-port "$port" --data-file "$event"
  echo
done
