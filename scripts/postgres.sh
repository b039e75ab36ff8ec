#!/usr/bin/env bash
# Makes sure the PostgreSQL that DATABASE_URL names answers, and that DATABASE_URL's database
# exists (sqlx::test makes each test's database from it, and a fresh server has none).
# Usage: scripts/postgres.sh ensure
# A local server (127.0.0.1/localhost, or no DATABASE_URL) that is down is started with the
# system's pg_ctlcluster; a remote one is only checked.
set -euo pipefail
url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
host=$(sed -E 's#^[a-z]+://([^@/]*@)?\[?([^]:/?]*)\]?.*#\2#' <<<"$url")
port=$(sed -nE 's#^[a-z]+://([^@/]*@)?[^:/?]*:([0-9]+).*#\2#p' <<<"$url")
port=${port:-5432}

answers() { pg_isready -q -h "${host:-127.0.0.1}" -p "$port" -t 2 2>/dev/null; }

# DATABASE_URL's database, created on its server when missing.
ensure_database() {
  local dbname admin_url
  dbname=$(sed -E 's#^[a-z]+://[^/]*/?##; s#[?].*$##' <<<"$url")
  [ -n "$dbname" ] || return 0
  psql -q -X -t -A "$url" -c 'SELECT 1' >/dev/null 2>&1 && return 0
  admin_url=$(sed -E "s#^([a-z]+://[^/]*)/[^?]*#\1/postgres#" <<<"$url")
  psql -q -X -v ON_ERROR_STOP=1 "$admin_url" -c "CREATE DATABASE \"$dbname\"" >/dev/null &&
    echo "postgres.sh: created database $dbname"
}

[ "${1:-}" = ensure ] || { echo "usage: $0 ensure" >&2; exit 2; }
command -v pg_isready >/dev/null || {
  echo "postgres.sh: PostgreSQL client tools are missing (apt-get install postgresql), or use Docker: docker compose up -d" >&2
  exit 1
}
answers && { ensure_database; exit 0; }
case ${host:-127.0.0.1} in
  127.0.0.1 | localhost | ::1) ;;
  *) echo "postgres.sh: PostgreSQL at $host:$port does not answer (DATABASE_URL)" >&2; exit 1 ;;
esac
if command -v pg_lsclusters >/dev/null && [ -n "$(pg_lsclusters -h 2>/dev/null)" ]; then
  read -r version cluster _ < <(pg_lsclusters -h | awk -v p="$port" '$3 == p {print $1, $2}')
  if [ -n "${version:-}" ]; then
    echo "postgres.sh: starting PostgreSQL $version/$cluster"
    pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start
    for _ in $(seq 1 30); do answers && { ensure_database; exit 0; }; sleep 1; done
  fi
fi
echo "postgres.sh: no PostgreSQL answers on ${host:-127.0.0.1}:$port and none could be started here." >&2
echo "  Install one (apt-get install postgresql), point DATABASE_URL at a server, or use Docker: docker compose up -d" >&2
exit 1
