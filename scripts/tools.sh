#!/usr/bin/env bash
# The project's pinned tools (aws-sam-cli, cargo-lambda) in .venv/tools.
# Usage: scripts/tools.sh install   create/update the venv when tools/requirements-tools.txt changed
#        scripts/tools.sh path      print the venv's bin directory (for PATH)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.venv/tools
requirements=$root/tools/requirements-tools.txt

case ${1:-} in
  install)
    # One install at a time (make test installs in the background while other steps wait).
    mkdir -p "$root/.venv"
    exec 9>"$root/.venv/.tools.lock"
    flock 9
    "$root/scripts/venv.sh" ensure "$venv" "$requirements"
    ;;
  path) echo "$venv/bin" ;;
  *) echo "usage: $0 install|path" >&2; exit 2 ;;
esac
