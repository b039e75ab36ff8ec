#!/usr/bin/env bash
# Syncs one dependency group of the Python tooling's project (tools/python: pyproject.toml) into
# its own venv, exactly as tools/python/uv.lock pins it, with the pinned uv (pyproject.toml's
# [tool.uv] required-version, installed into .venv/uv).
# Usage: scripts/uv-sync.sh GROUP VENV MIN_PYTHON   e.g. uv-sync.sh localstack .venv/localstack 3.12
#        scripts/uv-sync.sh uv                      print the pinned uv (installing it if needed)
#
# `uv sync --locked` leaves a current venv alone (in well under a second), installs or removes
# only what differs otherwise, and refuses a uv.lock that no longer matches pyproject.toml
# (after changing a pin: .venv/uv/bin/uv lock --project tools/python, and commit both). The
# caller holds its own lock (tools.sh, checkov.sh, deny.sh; localstack.sh under services.sh's),
# so two steps of `make test` never sync the same venv at once; different venvs sync side by
# side, from one download cache (.venv/.uv-cache).
#
# The Python: the one VENV was made from while it is >= MIN_PYTHON (and within pyproject.toml's
# requires-python), else the first such that uv finds on PATH, else the newest such among
# pyenv's installed versions (pyenv's shims answer only for the selected version, and uv stops
# at a shim that fails). uv never downloads one
# (UV_PYTHON_DOWNLOADS=never: python-build-standalone comes from GitHub, not a package registry).
#
# Why uv and not pip: `make test` makes four venvs, three of them with their own boto3 and
# botocore. On a fresh clone pip took 160-190 s for each while cargo compiled beside it (pip
# downloads one file at a time and compiles every module's bytecode up front); uv installs
# the same pins in seconds, and Python compiles a module's bytecode when it is first imported.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
project=$root/tools/python
uv_venv=$root/.venv/uv
export UV_CACHE_DIR=$root/.venv/.uv-cache UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1

# pyproject.toml's `key = "value"` line (the first one).
setting() { sed -n "s/^$1 = \"\(.*\)\"\$/\1/p" "$project/pyproject.toml" | head -n 1; }

# Prints the pinned uv, installing it (with pip, one wheel) when missing or another version.
uv_binary() {
  local version
  version=$(setting required-version)
  version=${version#==}
  [ -n "$version" ] || { echo "uv-sync.sh: no [tool.uv] required-version = \"==X.Y.Z\" in tools/python/pyproject.toml" >&2; exit 1; }
  mkdir -p "$root/.venv"
  exec 7>"$root/.venv/.uv.lock"
  flock 7
  if [ "$("$uv_venv/bin/uv" --version 2>/dev/null | cut -d' ' -f1-2)" != "uv $version" ]; then
    echo "uv-sync.sh: installing uv $version into .venv/uv" >&2
    rm -rf "$uv_venv"
    python3 -m venv "$uv_venv" >&2
    "$uv_venv/bin/pip" install --quiet --disable-pip-version-check "uv==$version" >&2
  fi
  exec 7>&-
  echo "$uv_venv/bin/uv"
}

# Prints a Python interpreter satisfying REQUEST (a version specifier) for VENV, as uv finds
# it: the one VENV was made from (so a current venv stays), else the first on PATH, else the
# newest in pyenv.
find_python() {
  local request=$1 venv=$2 pyenv_root=${PYENV_ROOT:-$HOME/.pyenv} path="" dir home
  home=$(sed -n 's/^home = //p' "$venv/pyvenv.cfg" 2>/dev/null)
  if [ -n "$home" ] && PATH=$home "$uv" python find --system "$request" 2>/dev/null; then
    return
  fi
  if "$uv" python find --system "$request" 2>/dev/null; then
    return
  fi
  for dir in $(printf '%s\n' "$pyenv_root"/versions/3.* | sort -rV); do
    [ -x "$dir/bin/python3" ] && path=$path${path:+:}$dir/bin
  done
  [ -n "$path" ] && PATH=$path "$uv" python find --system "$request" 2>/dev/null
}

sync() {
  local group=$1 venv=$2 min=$3 request python out
  request=">=$min"
  [ -z "$(setting requires-python)" ] || request="$(setting requires-python),$request"
  uv=$(uv_binary)
  python=$(find_python "$request" "$venv") || {
    echo "uv-sync.sh: the '$group' group needs Python $request; none found on PATH or in pyenv." >&2
    echo "  Install one (e.g. 'pyenv install 3.13'); uv does not download one here (UV_PYTHON_DOWNLOADS=never)." >&2
    exit 1
  }
  # --no-default-groups --group: this group only; --locked: exactly uv.lock, which must be
  # current; the venv keeps nothing else (uv sync is exact).
  if ! out=$(cd "$project" && UV_PROJECT_ENVIRONMENT=$venv "$uv" sync --locked --no-default-groups \
    --group "$group" --python "$python" 2>&1); then
    echo "$out" >&2
    echo "uv-sync.sh: could not sync the '$group' group into ${venv#"$root"/}" >&2
    if grep -q -- '--locked' <<<"$out"; then
      echo "  tools/python/pyproject.toml changed: run .venv/uv/bin/uv lock --project tools/python (the pinned uv)" >&2
      echo "  and commit tools/python/uv.lock with it" >&2
    fi
    exit 1
  fi
  # Quiet when the venv was current; otherwise what uv changed.
  if grep -qE '^(Creating|Removed|Installed|Uninstalled)' <<<"$out"; then
    grep -E '^(Using|Creating|Removed|Installed|Uninstalled)' <<<"$out" |
      sed "s|^|uv-sync.sh: $group (${venv#"$root"/}): |" >&2
  fi
}

case ${1:-} in
  uv) [ $# -eq 1 ] || { echo "usage: $0 uv" >&2; exit 2; }; uv_binary ;;
  -* | '') echo "usage: $0 GROUP VENV MIN_PYTHON | uv" >&2; exit 2 ;;
  *)
    [ $# -eq 3 ] || { echo "usage: $0 GROUP VENV MIN_PYTHON | uv" >&2; exit 2; }
    venv=$2
    case $venv in /*) ;; *) venv=$PWD/$venv ;; esac
    sync "$1" "$venv" "$3"
    ;;
esac
