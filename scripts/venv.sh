#!/usr/bin/env bash
# Makes a project venv hold exactly a pinned requirements file, with uv (tools/requirements-uv.txt).
# Usage: scripts/venv.sh ensure VENV REQUIREMENTS [PYTHON]   (PYTHON defaults to python3)
#        scripts/venv.sh current VENV REQUIREMENTS            exit 0 when VENV holds REQUIREMENTS
#
# VENV is left alone when its stamp says it already holds REQUIREMENTS; otherwise it is made
# again from nothing, and this says so on stderr. The caller holds its own lock (tools.sh, localstack.sh, checkov.sh,
# deny.sh), so two steps of `make test` never build the same venv at once.
#
# Why uv and not pip: `make test` makes four venvs, three of them with their own boto3 and
# botocore. On a fresh clone pip took 160-190 s for each while cargo compiled beside it (pip
# downloads one file at a time and compiles every module's bytecode up front); uv installs
# the same pins in seconds, from one download cache for the four (.venv/.uv-cache), and
# Python compiles a module's bytecode when it is first imported.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
uv_venv=$root/.venv/uv
uv_requirements=$root/tools/requirements-uv.txt

stamp_of() { sha256sum "$1" | cut -d' ' -f1; }

# Whether VENV was made from REQUIREMENTS as they are now (the stamp ensure writes last).
current() { [ -x "$1/bin/python" ] && [ "$(cat "$1/.requirements.sha256" 2>/dev/null)" = "$(stamp_of "$2")" ]; }

# Prints the pinned uv, installing it (with pip, one small wheel) when missing or re-pinned.
uv_binary() {
  mkdir -p "$root/.venv"
  exec 7>"$root/.venv/.uv.lock"
  flock 7
  local want
  want=$(stamp_of "$uv_requirements")
  if [ ! -x "$uv_venv/bin/uv" ] || [ "$(cat "$uv_venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
    rm -rf "$uv_venv"
    python3 -m venv "$uv_venv" >&2
    "$uv_venv/bin/pip" install --quiet --disable-pip-version-check -r "$uv_requirements" >&2
    echo "$want" >"$uv_venv/.requirements.sha256"
  fi
  exec 7>&-
  echo "$uv_venv/bin/uv"
}

usage="usage: $0 ensure VENV REQUIREMENTS [PYTHON] | current VENV REQUIREMENTS"
case ${1:-} in
  current)
    [ $# -eq 3 ] || { echo "$usage" >&2; exit 2; }
    current "$2" "$3"
    ;;
  ensure)
    [ $# -ge 3 ] || { echo "$usage" >&2; exit 2; }
    venv=$2 requirements=$3 python=${4:-python3}
    current "$venv" "$requirements" && exit 0
    echo "venv.sh: installing ${requirements#"$root"/} into ${venv#"$root"/} with $("$python" --version)" >&2
    uv=$(uv_binary)
    # Never fetch a Python: the caller chose one that is on this machine.
    export UV_CACHE_DIR=$root/.venv/.uv-cache UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1
    rm -rf "$venv"
    "$uv" venv --quiet --python "$python" "$venv"
    "$uv" pip install --quiet --python "$venv/bin/python" -r "$requirements"
    stamp_of "$requirements" >"$venv/.requirements.sha256"
    ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
