#!/usr/bin/env bash
# Starts or stops what the project needs: PostgreSQL, LocalStack (SQS, Secrets Manager, KMS)
# and a PgBouncer in transaction mode (scripts/pgbouncer.sh, installed from Debian when missing).
# Usage: scripts/services.sh up|down|status
# With a Docker engine: docker compose (docker-compose.yml). Without one: host mode, the
# system PostgreSQL (scripts/postgres.sh) and LocalStack from PyPI (scripts/localstack.sh).
# SERVICES_MODE=docker|host forces a mode.
set -euo pipefail
cd "$(dirname "$0")/.."

# One `up` at a time: make test starts the services in the background while it compiles, and
# every test target's own `up` then waits for that one instead of starting them twice.
# (flock -o: the services started here must not inherit the lock and hold it forever.)
if [ -z "${LOGIN_ETL_SERVICES_LOCKED:-}" ]; then
  mkdir -p .run
  LOGIN_ETL_SERVICES_LOCKED=1 exec flock -o .run/services.lock "$PWD/scripts/services.sh" "$@"
fi

# docker-compose.yml's images, present or pullable: an engine that answers but cannot pull them
# (offline, or started only for `make sam-local`) leaves the services in host mode.
compose_images() {
  local images
  images=$(docker compose config --images 2>/dev/null | grep -v '^login-etl-cli') || return 1
  # shellcheck disable=SC2086
  docker image inspect $images >/dev/null 2>&1 || timeout 300 docker compose pull -q postgres localstack >/dev/null 2>&1
}

mode=${SERVICES_MODE:-} why=
if [ -z "$mode" ] && [ "${1:-}" = up ]; then
  if command -v docker >/dev/null && timeout 5 docker info >/dev/null 2>&1; then
    if compose_images; then mode=docker; else
      mode=host why="; a Docker engine answers but cannot pull docker-compose.yml's images"
    fi
  else mode=host; fi
elif [ -z "$mode" ]; then
  # down and status: whichever mode `up` chose (a compose project with containers is docker's).
  if command -v docker >/dev/null && timeout 5 docker info >/dev/null 2>&1 &&
    [ -n "$(docker compose ps -q 2>/dev/null)" ]; then mode=docker; else mode=host; fi
fi

case "$mode:${1:-}" in
  docker:up)
    echo "services: docker compose (PostgreSQL + LocalStack)"
    docker compose up -d --wait
    scripts/pgbouncer.sh start
    ;;
  docker:down) scripts/pgbouncer.sh stop; docker compose down ;;
  docker:status) docker compose ps ;;
  host:up)
    echo "services: host mode (system PostgreSQL + LocalStack from .venv/localstack$why)"
    scripts/postgres.sh ensure
    scripts/localstack.sh start
    scripts/pgbouncer.sh start
    ;;
  host:down)
    scripts/pgbouncer.sh stop
    scripts/localstack.sh stop
    ;;
  host:status)
    scripts/postgres.sh ensure && echo "PostgreSQL answers"
    scripts/localstack.sh status
    ;;
  *) echo "usage: $0 up|down|status (SERVICES_MODE=docker|host)" >&2; exit 2 ;;
esac
