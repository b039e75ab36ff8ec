#!/usr/bin/env bash
# LocalStack in host mode, for machines without a Docker engine (ours, and CI).
# Usage: scripts/localstack.sh start|stop|restart|status|docker
#   start   sync .venv/localstack with its pins (tools/python's `localstack` group, Python
#           >= 3.12: scripts/uv-sync.sh finds one on PATH or in pyenv), start LocalStack in
#           the background (pid .run/localstack.pid, log .run/localstack.log) and wait
#           until SQS, Secrets Manager and KMS answer. Does
#           nothing if LocalStack already answers on the port. It also serves what make e2e
#           deploys template.yaml into (CloudFormation, Lambda in Docker, ...: localstack_services).
#   stop    stop the LocalStack this script started (nothing else).
#   restart stop, then start.
#   docker  exit 0 when the LocalStack this script started found a Docker engine when it
#           started: its Lambda service looks for one once and keeps the answer
#           (.run/localstack.docker), so make e2e restarts one that found none.
#   status  print the health document; exit 1 when down.
# LOCALSTACK_PORT (default 4566) picks the port.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/pidfile.sh
. "$root/scripts/lib/pidfile.sh"
port=${LOCALSTACK_PORT:-4566}
venv=$root/.venv/localstack
run=$root/.run
pidfile=$run/localstack.pid
log=$run/localstack.log
health=http://127.0.0.1:$port/_localstack/health
# What the tests use (sqs, secretsmanager, kms), and what make e2e deploys template.yaml with.
localstack_services=sqs,secretsmanager,kms,cloudformation,lambda,iam,sts,logs,cloudwatch,events,scheduler,ssm,s3

healthy() {
  curl -sf --max-time 2 "$health" 2>/dev/null | grep -q '"sqs": "\(available\|running\)"'
}

ready() {
  local doc
  doc=$(curl -sf --max-time 2 "$health" 2>/dev/null) || return 1
  for service in sqs secretsmanager kms; do
    grep -q "\"$service\": \"\(available\|running\)\"" <<<"$doc" || return 1
  done
}

install() {
  # LocalStack needs Python >= 3.12 (3.12.1 was seen to start it without its runtime components;
  # 3.13 works: uv-sync.sh takes pyenv's newest when none is on PATH).
  # One sync at a time: make deploy-rehearsal syncs it too, for its pinned AWS CLI.
  mkdir -p "$run"
  exec 7>"$run/localstack-venv.lock"
  flock 7
  "$root/scripts/uv-sync.sh" localstack "$venv" 3.12 || {
    echo "localstack.sh: no LocalStack venv; or use Docker: docker compose up -d" >&2
    exit 1
  }
  exec 7>&- # released, and not inherited by the LocalStack started next
}

start() {
  if healthy; then
    echo "localstack.sh: LocalStack already answers on 127.0.0.1:$port"
    return
  fi
  install
  mkdir -p "$run/localstack-data"
  echo "localstack.sh: starting LocalStack on 127.0.0.1:$port (log: .run/localstack.log)"
  # Whether an engine answers now is what LocalStack's Lambda will have found.
  if command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; then
    echo yes >"$run/localstack.docker"
  else
    echo no >"$run/localstack.docker"
  fi
  local arch
  case $(uname -m) in aarch64 | arm64) arch=arm64 ;; *) arch=x86_64 ;; esac
  (
    cd "$run"
    # The Lambda settings are for make e2e (scripts/e2e.sh): functions run in Docker containers
    # in the host's network (the only one a loopback-only machine has), reaching LocalStack on
    # 127.0.0.1, on AWS's provided.al2023 image for this host's architecture; no DNS server
    # (it would take port 53); OVERRIDE_IN_DOCKER=0 because /.dockerenv may exist while
    # LocalStack runs on the host. Its SQS pollers wait 1 s after every batch and up to 10 s
    # after an empty receive by default (Lambda's poll continuously): 0.1 s and 1 s instead.
    # Services load on first use, so the extra ones cost `up` nothing.
    export GATEWAY_LISTEN=127.0.0.1:$port LOCALSTACK_HOST=127.0.0.1:$port SQS_ENDPOINT_STRATEGY=path \
      SERVICES=$localstack_services FILESYSTEM_ROOT=$run/localstack-data TMPDIR=$run/localstack-data \
      OVERRIDE_IN_DOCKER=0 DNS_ADDRESS=0 LAMBDA_DOCKER_NETWORK=host HOSTNAME_FROM_LAMBDA=127.0.0.1 \
      LAMBDA_RUNTIME_IMAGE_MAPPING="{\"provided.al2023\": \"public.ecr.aws/lambda/provided:al2023-$arch\"}" \
      MAIN_CONTAINER_NAME=e2e-login-etl-localstack-$port LOGIN_ETL_LAMBDA_INIT=$run/lambda-init \
      LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC=0.1 LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC=1
    # tools/stand-ins/localstack-lambda-docker.py is LocalStack's own main, with stand-ins for what its
    # Lambda service downloads, each used only when the download fails (tools/stand-ins/README.md).
    setsid nohup "$venv/bin/python" "$root/tools/stand-ins/localstack-lambda-docker.py" >"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
  )
  for _ in $(seq 1 120); do
    if ready; then
      echo "localstack.sh: ready"
      return
    fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      break
    fi
    sleep 1
  done
  echo "localstack.sh: LocalStack did not become ready; last lines of .run/localstack.log:" >&2
  tail -n 40 "$log" >&2 || true
  exit 1
}

stop() { stop_started localstack.sh LocalStack "$pidfile" 10 group "$run/localstack.docker"; }

case ${1:-} in
  start) start ;;
  stop) stop ;;
  restart) stop && start ;;
  docker) [ "$(cat "$run/localstack.docker" 2>/dev/null)" = yes ] ;;
  status)
    if ! curl -sf --max-time 2 "$health"; then
      echo "LocalStack is down on 127.0.0.1:$port"
      exit 1
    fi
    echo
    ;;
  *) echo "usage: $0 start|stop|restart|status|docker" >&2; exit 2 ;;
esac
