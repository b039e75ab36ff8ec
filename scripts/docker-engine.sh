#!/usr/bin/env bash
# A Docker engine for `make sam-local` (SAM runs the function in its Lambda container).
# Usage: scripts/docker-engine.sh ensure|stop|status
#   ensure  use the engine that answers (`docker info`); where none does, on Linux as root,
#           install Debian's docker.io, containerd and runc when missing and start dockerd in
#           the background (pid .run/dockerd.pid, log .run/dockerd.log), as scripts/pgbouncer.sh
#           does with PgBouncer. The engine it starts has no bridge network and touches no
#           firewall (--bridge=none --iptables=false --ip6tables=false --ip-masq=false):
#           containers use the host's network, which is all a loopback-only machine allows.
#   stop    stop the dockerd this script started (by its pid file; nothing else).
#   status  exit 0 when an engine answers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/pidfile.sh
. "$root/scripts/lib/pidfile.sh"
run=$root/.run
pidfile=$run/dockerd.pid
log=$run/dockerd.log

answers() { command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; }

install() {
  command -v dockerd >/dev/null && return 0
  if [ "$(uname -s)" != Linux ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "docker-engine.sh: no Docker engine answers and none can be installed here; install Docker (https://docs.docker.com/engine/install/) and start it" >&2
    exit 1
  fi
  echo "docker-engine.sh: installing Debian's docker.io, containerd and runc" >&2
  mkdir -p "$root/.run" # apt.lock: one apt-get at a time across make test's background steps
  DEBIAN_FRONTEND=noninteractive flock "$root/.run/apt.lock" apt-get -o DPkg::Lock::Timeout=600 install -y -qq docker.io containerd runc >/dev/null 2>&1 ||
    { flock "$root/.run/apt.lock" apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive flock "$root/.run/apt.lock" apt-get -o DPkg::Lock::Timeout=600 install -y -qq docker.io containerd runc >/dev/null; }
}

ensure() {
  answers && return 0
  # One start at a time: make test starts the engine in the background while it compiles, and
  # test-sam-local's own `ensure` then waits for that one.
  if [ -z "${LOGIN_ETL_DOCKER_LOCKED:-}" ]; then
    mkdir -p "$run"
    LOGIN_ETL_DOCKER_LOCKED=1 exec flock -o "$run/docker-engine.lock" "$root/scripts/docker-engine.sh" ensure
  fi
  install
  mkdir -p "$run"
  echo "docker-engine.sh: starting dockerd without a bridge network (log: .run/dockerd.log)" >&2
  setsid nohup dockerd --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
    --pidfile "$pidfile" >"$log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    answers && return 0
    sleep 0.5
  done
  echo "docker-engine.sh: dockerd did not answer; last lines of .run/dockerd.log:" >&2
  tail -n 20 "$log" >&2 || true
  exit 1
}

stop() { stop_started docker-engine.sh dockerd "$pidfile" 20 process; }

case ${1:-} in
  ensure) ensure ;;
  stop) stop ;;
  status) answers ;;
  *) echo "usage: $0 ensure|stop|status" >&2; exit 2 ;;
esac
