#!/usr/bin/env bash
# The project's pinned tools (aws-sam-cli, cargo-lambda, actionlint, boto3, PyYAML) in .venv/tools:
# tools/python's `tools` group as its uv.lock pins it, with the machine's Python (>= 3.11).
# Usage: scripts/tools.sh install   sync the venv with its pins (nothing to do when it is current)
#        scripts/tools.sh path      print the venv's bin directory (for PATH)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.venv/tools

case ${1:-} in
  install)
    # One sync at a time (make test installs in the background while other steps wait).
    mkdir -p "$root/.venv"
    exec 9>"$root/.venv/.tools.lock"
    flock 9
    "$root/scripts/uv-sync.sh" tools "$venv" 3.11
    ;;
  path) echo "$venv/bin" ;;
  *) echo "usage: $0 install|path" >&2; exit 2 ;;
esac
