#!/usr/bin/env bash
# `make e2e`: the seed's job on the deployed shape. template.yaml deployed into the `make up`
# LocalStack through CloudFormation, LocalStack's own SQS event source mapping invoking the
# function in Docker containers, which load into the `make up` PostgreSQL (tools/python/e2e.py
# deploys, runs and checks; docs/development.md, "make e2e").
# Usage: scripts/e2e.sh            the whole run (make e2e)
#        scripts/e2e.sh --check-pin the LocalStack version the stand-ins speak to is the pinned one
# Environment: E2E_BOOTSTRAP (default target/debug/login-etl: make test's own debug build),
# E2E_DATABASE (login_etl_e2e), E2E_COUNT (1000), E2E_BAD_RATIO (0.05), E2E_STACK_PREFIX (e2e),
# E2E_KEEP_STACKS=1, E2E_TIMEOUT (150 s), and the `make up` ports (AWS_ENDPOINT_URL, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# tools/stand-ins/localstack-lambda-docker.py patches LocalStack's private Lambda code and
# tools/stand-ins/lambda-init speaks its private protocol: both for the version pinned here.
check_pin() {
  local pinned stand_in
  pinned=$(sed -n 's/^ *"localstack-core\[runtime\]==\(.*\)",$/\1/p' tools/python/pyproject.toml)
  stand_in=$(sed -n 's/^PINNED = "\(.*\)"$/\1/p' tools/stand-ins/localstack-lambda-docker.py)
  if [ -z "$pinned" ] || [ "$pinned" != "$stand_in" ]; then
    echo "e2e.sh: tools/python/pyproject.toml pins localstack-core '$pinned', the stand-ins speak to '$stand_in'" >&2
    return 1
  fi
  if ! grep -q "localstack-core $pinned" tools/stand-ins/lambda-init/src/main.rs; then
    echo "e2e.sh: tools/stand-ins/lambda-init/src/main.rs does not name localstack-core $pinned" >&2
    return 1
  fi
  echo "e2e: LocalStack pinned at $pinned, the version the stand-ins speak to"
}
if [ "${1:-}" = --check-pin ]; then check_pin; exit; fi
check_pin

endpoint=${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}
health=$(curl -sf --max-time 5 "$endpoint/_localstack/health") || { echo "e2e.sh: no LocalStack at $endpoint (make up)" >&2; exit 1; }
for service in cloudformation lambda iam logs cloudwatch scheduler s3; do
  grep -q "\"$service\": \"\(available\|running\)\"" <<<"$health" || {
    echo "e2e.sh: the LocalStack at $endpoint does not serve $service; it was started before make e2e existed:" >&2
    echo "  restart it (make down && make up) so that scripts/localstack.sh starts it with make e2e's services" >&2
    exit 1
  }
done

scripts/docker-engine.sh ensure
# LocalStack's Lambda looks for a Docker engine once; one this project started before the
# engine answered (make up on a machine without one) is restarted now that one does.
if [ -f .run/localstack.pid ] && [ "$endpoint" = "http://127.0.0.1:${LOCALSTACK_PORT:-4566}" ] && ! scripts/localstack.sh docker; then
  echo "e2e.sh: the LocalStack make up started found no Docker engine; restarting it"
  scripts/localstack.sh restart
fi
[ "${LOGIN_ETL_PREBUILT:-}" = 1 ] || cargo build --quiet --bin login-etl --bin login-etl-cli
bootstrap=${E2E_BOOTSTRAP:-target/debug/login-etl}
cli=${CARGO_TARGET_DIR:-target}/debug/login-etl-cli
[ "$bootstrap" != target/debug/login-etl ] || bootstrap=${CARGO_TARGET_DIR:-target}/debug/login-etl

# LocalStack's runtime image for provided.al2023 (scripts/localstack.sh maps it to AWS's image
# for this host's architecture): present, pulled, or else the offline stand-in.
case $(uname -m) in aarch64 | arm64) arch=arm64 ;; *) arch=x86_64 ;; esac
image=public.ecr.aws/lambda/provided:al2023-$arch
if ! docker image inspect "$image" >/dev/null 2>&1 && ! timeout 300 docker pull -q "$image" >/dev/null 2>&1; then
  echo "e2e.sh: $image cannot be pulled here; building the stand-in offline (tools/stand-ins/lambda-base-image.sh)"
  tools/stand-ins/lambda-base-image.sh "$image" "$bootstrap"
fi
# The stand-in runtime init, for when LocalStack cannot download its own (it says which it
# uses in .run/localstack.log). Std only, linked statically: about a second.
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release \
  --manifest-path tools/stand-ins/lambda-init/Cargo.toml --target "$(rustc -vV | sed -n 's/^host: //p')" \
  --target-dir "${CARGO_TARGET_DIR:-target}/lambda-init"
mkdir -p .run
cp "${CARGO_TARGET_DIR:-target}/lambda-init/$(rustc -vV | sed -n 's/^host: //p')/release/lambda-init-stand-in" .run/lambda-init.new
mv .run/lambda-init.new .run/lambda-init

# The function's database: a fresh one per run, migrated; its secret in the RDS format.
database=${E2E_DATABASE:-login_etl_e2e}
base=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/login_etl}
server=${base%/*}
hostport=${server#*@}
psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)"
DATABASE_URL=$server/$database "$cli" migrate >/dev/null
# The function reaches PostgreSQL where its container runs: the host's network (host mode,
# scripts/localstack.sh), or docker compose's network, where it is `postgres` on 5432.
db_host=
if command -v docker >/dev/null && [ -n "$(docker compose ps -q localstack 2>/dev/null)" ]; then
  db_host=postgres
  echo "e2e: docker compose's LocalStack; the function reaches PostgreSQL as postgres:5432"
fi
secret=$(python3 -c '
import json, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
host, port = (sys.argv[3], 5432) if sys.argv[3] else (u.hostname, u.port or 5432)
print(json.dumps({"engine": "postgres", "username": u.username or "postgres", "password": u.password or "",
                  "host": host, "port": port, "dbname": sys.argv[2]}))' "$server/$database" "$database" "$db_host")
secret_name=${E2E_STACK_PREFIX:-e2e}/login-etl/db
export AWS_ENDPOINT_URL=$endpoint AWS_REGION=${AWS_REGION:-us-east-1} AWS_DEFAULT_REGION=${AWS_REGION:-us-east-1}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
scripts/tools.sh install # the pinned SAM CLI's venv: boto3 and PyYAML, in host and docker mode
python=$(scripts/tools.sh path)/python
E2E_DB_SECRET_ARN=$("$python" - "$secret_name" "$secret" <<'PY'
import sys, boto3
sm = boto3.client("secretsmanager")
name, value = sys.argv[1], sys.argv[2]
try:
    print(sm.create_secret(Name=name, SecretString=value)["ARN"])
except sm.exceptions.ResourceExistsException:
    sm.put_secret_value(SecretId=name, SecretString=value)
    print(sm.describe_secret(SecretId=name)["ARN"])
PY
)
export E2E_DB_SECRET_ARN DATABASE_URL=$server/$database
echo "e2e: the function's database is $database on $hostport (secret $secret_name in LocalStack)"
exec "$python" tools/python/e2e.py "$bootstrap" "$cli"
