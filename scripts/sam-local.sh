#!/usr/bin/env bash
# `sam local invoke` as the design names it: the function in SAM's own Lambda container, run
# by AWS's Runtime Interface Emulator, on an event, with env.json's local settings.
# Usage: scripts/sam-local.sh [EVENT_JSON [ENV_JSON]] [-- Name=Value ...]
#        (defaults events/batch.json and env.json; Name=Value are the template's parameters,
#        e.g. ApplicationLogLevel=WARN, given to SAM beside Architecture in one
#        --parameter-overrides: SAM keeps only the last of several)
#        scripts/sam-local.sh stop: stop the network stand-in this script started (make down)
# The SQSBatchResponse goes to stdout, SAM's lines and the function's logs to stderr.
#
# - The engine: the one that answers, else one started from Debian's packages
#   (scripts/docker-engine.sh).
# - The architecture: the host's (x86_64 on an x86_64 laptop); arm64 stays what deploys.
# - The bootstrap: SAM_LOCAL_BOOTSTRAP when set (make test passes its debug build); else, with
#   AWS's base image, `cargo lambda build` for Linux on the host's architecture; with the
#   offline stand-in image (whose libraries are this host's), `cargo build`.
# - The base image: public.ecr.aws/lambda/provided:al2023-ARCH, pulled; where it cannot be
#   pulled, the stand-in built offline (tools/stand-ins/lambda-base-image.sh), said in one line.
# - The network: on an engine with a bridge network, SAM's own container networking, and
#   host.docker.internal is the host gateway (the services must listen there, as docker
#   compose's do); on an engine without one, tools/stand-ins/docker-host-network.py puts SAM's
#   container in the host's network, where host.docker.internal is 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
proxy_pidfile=.run/docker-host-network.pid
if [ "${1:-}" = stop ]; then
  if [ -f $proxy_pidfile ] && kill -0 "$(cat $proxy_pidfile)" 2>/dev/null; then kill "$(cat $proxy_pidfile)"; fi
  rm -f $proxy_pidfile
  exit 0
fi
event=events/batch.json env_json=env.json parameters=()
[ $# -gt 0 ] && [ "$1" != -- ] && { event=$1; shift; }
[ $# -gt 0 ] && [ "$1" != -- ] && { env_json=$1; shift; }
[ $# -gt 0 ] && [ "$1" = -- ] && { shift; parameters=("$@"); }

scripts/tools.sh install
scripts/docker-engine.sh ensure
PATH="$(scripts/tools.sh path):$PATH"
export PATH SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
unset AWS_ENDPOINT_URL # env.json says where the function's AWS calls go

case $(uname -m) in
  x86_64 | amd64) arch=x86_64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "sam-local.sh: no Lambda architecture for $(uname -m)" >&2; exit 1 ;;
esac
base=public.ecr.aws/lambda/provided:al2023-$arch
rapid=public.ecr.aws/lambda/provided:al2023-rapid-$arch
stand_in() { [ -n "$(docker image inspect -f '{{index .Config.Labels "org.login-etl.stand-in"}}' "$base" 2>/dev/null)" ]; }
if ! docker image inspect "$base" >/dev/null 2>&1 || stand_in; then
  if timeout 600 docker pull -q "$base" >/dev/null 2>&1; then
    docker image rm "$rapid" >/dev/null 2>&1 || true # SAM rebuilds its emulator image on the real one
  fi
fi

bootstrap=${SAM_LOCAL_BOOTSTRAP:-}
if [ -z "$bootstrap" ]; then
  if docker image inspect "$base" >/dev/null 2>&1 && ! stand_in; then
    cargo lambda build --bin login-etl "--$([ $arch = x86_64 ] && echo x86-64 || echo arm64)" >&2
    bootstrap=${CARGO_TARGET_DIR:-target}/lambda/login-etl/bootstrap
  else
    [ "${LOGIN_ETL_PREBUILT:-}" = 1 ] || cargo build --bin login-etl >&2
    bootstrap=${CARGO_TARGET_DIR:-target}/debug/login-etl
  fi
fi
if ! docker image inspect "$base" >/dev/null 2>&1; then
  echo "sam-local.sh: $base cannot be pulled here; using a stand-in built offline (tools/stand-ins/lambda-base-image.sh)" >&2
  tools/stand-ins/lambda-base-image.sh "$base" "$bootstrap" >&2
  docker image rm "$rapid" >/dev/null 2>&1 || true
elif stand_in; then
  echo "sam-local.sh: $base cannot be pulled here; using the stand-in built offline (tools/stand-ins/lambda-base-image.sh)" >&2
fi

# What `sam build` would leave: the template with the function's code in a folder of its own.
stage=.run/sam-local
rm -rf "$stage" && mkdir -p "$stage/LoginEtlFunction"
ln "$bootstrap" "$stage/LoginEtlFunction/bootstrap" 2>/dev/null || cp "$bootstrap" "$stage/LoginEtlFunction/bootstrap"
python - "$stage" <<'PY'
import sys
from samcli.yamlhelper import yaml_dump, yaml_parse
stage = sys.argv[1]
template = yaml_parse(open("template.yaml").read())
function = template["Resources"]["LoginEtlFunction"]
function["Properties"]["CodeUri"] = "LoginEtlFunction"
for built in ("BuildMethod", "BuildProperties"):
    function["Metadata"].pop(built, None)
open(f"{stage}/template.yaml", "w").write(yaml_dump(template))
PY

if docker network inspect bridge >/dev/null 2>&1; then
  host=host-gateway
else
  host=127.0.0.1
  socket=$PWD/.run/docker-host-network.sock
  if ! { [ -f $proxy_pidfile ] && kill -0 "$(cat $proxy_pidfile)" 2>/dev/null; }; then
    setsid nohup python3 tools/stand-ins/docker-host-network.py "$socket" >.run/docker-host-network.log 2>&1 </dev/null &
    echo $! >$proxy_pidfile
    for _ in $(seq 1 50); do [ -S "$socket" ] && break; sleep 0.1; done
  fi
  export DOCKER_HOST=unix://$socket
fi

sam local invoke LoginEtlFunction --template "$stage/template.yaml" --event "$event" \
  --env-vars "$env_json" --parameter-overrides "Architecture=$arch" "${parameters[@]}" \
  --skip-pull-image --add-host "host.docker.internal:$host"
