#!/usr/bin/env bash
# A PgBouncer of the project's own, in transaction mode, for the pooler tests and benchmarks.
# Usage: scripts/pgbouncer.sh start|stop|status
#   start   install Debian's pgbouncer when missing (as root), write .run/pgbouncer/pgbouncer.ini,
#           start it as user postgres on PGBOUNCER_PORT (default 6432) with a pid file, and wait
#           until it answers. Does nothing if this script's PgBouncer already runs.
#   stop    stop the PgBouncer this script started (by its pid file; nothing else).
#   release close its idle server connections now (so test databases can be dropped).
# It is configured as its users usually do: pool_mode = transaction, default_pool_size = 2,
# and only `extra_float_digits` (which many drivers send) in ignore_startup_parameters. Every
# database name is passed through to the PostgreSQL at PGBOUNCER_UPSTREAM (127.0.0.1:5432).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${PGBOUNCER_PORT:-6432}
upstream=${PGBOUNCER_UPSTREAM:-127.0.0.1:5432}
dir=$root/.run/pgbouncer
pidfile=$dir/pgbouncer.pid
ini=$dir/pgbouncer.ini

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
answers() { pg_isready -q -h 127.0.0.1 -p "$port" -d pgbouncer -U postgres -t 2 2>/dev/null; }

install() {
  command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "pgbouncer.sh: pgbouncer is not installed; run: sudo apt-get install -y pgbouncer" >&2
    exit 1
  fi
  echo "pgbouncer.sh: installing Debian's pgbouncer" >&2
  mkdir -p "$root/.run" # apt.lock: one apt-get at a time across make test's background steps
  DEBIAN_FRONTEND=noninteractive flock "$root/.run/apt.lock" apt-get -o DPkg::Lock::Timeout=600 install -y -qq pgbouncer >/dev/null 2>&1 ||
    { flock "$root/.run/apt.lock" apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive flock "$root/.run/apt.lock" apt-get -o DPkg::Lock::Timeout=600 install -y -qq pgbouncer >/dev/null; }
}

start() {
  if running; then answers && return 0; fi
  # Another checkout's (or the user's own) PgBouncer on this port: use it, as localstack.sh
  # does with a LocalStack that already answers.
  if answers; then
    echo "pgbouncer.sh: a PgBouncer already answers on 127.0.0.1:$port; using it" >&2
    return 0
  fi
  install
  mkdir -p "$dir"
  cat >"$ini" <<INI
[databases]
; The pooled benchmark's own pool of 4 server connections (benches/pooler.rs).
login_etl_bench_pool4 = host=${upstream%:*} port=${upstream##*:} dbname=login_etl_bench pool_size=4
* = host=${upstream%:*} port=${upstream##*:}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 1000
ignore_startup_parameters = extra_float_digits
; Tests create and drop a database each: do not keep idle server connections that would stop
; the DROP DATABASE (and sqlx's clean-up of earlier test databases).
server_idle_timeout = 1
admin_users = postgres
pidfile = $pidfile
logfile = $dir/pgbouncer.log
INI
  echo '"postgres" ""' >"$dir/userlist.txt"
  chown -R postgres "$dir"
  # PgBouncer will not run as root; -d daemonizes and writes the pid file.
  runuser -u postgres -- "$(command -v pgbouncer || echo /usr/sbin/pgbouncer)" -d "$ini"
  for _ in $(seq 1 50); do answers && { echo "pgbouncer.sh: PgBouncer (transaction mode) on 127.0.0.1:$port" >&2; return 0; }; sleep 0.2; done
  echo "pgbouncer.sh: PgBouncer did not start; see $dir/pgbouncer.log" >&2
  exit 1
}

stop() {
  running || return 0
  local pid
  pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$pidfile"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  release)
    # Closes idle server connections now (after a test run through the pooler).
    answers && psql -q -X -h 127.0.0.1 -p "$port" -U postgres -d pgbouncer -c RECONNECT >/dev/null
    ;;
  status) running && answers && echo "PgBouncer answers on 127.0.0.1:$port" ;;
  *) echo "usage: $0 start|stop|status|release" >&2; exit 2 ;;
esac
