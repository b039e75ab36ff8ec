#!/usr/bin/env bash
# Give a second cargo target directory what the first already compiled, as hard links.
# Usage: scripts/target-seed.sh FROM TO   (FROM, TO: cargo target directories)
#
# make test's release-less `sam build` (target/sam, cross-compiling to arm64) and crate-check
# (target/crate-check) keep target directories of their own, so that their cargo holds no lock
# the test steps wait on. Both compile much that lint-build has compiled in target/ already: the
# host's build scripts and proc-macros (sqlx's macros build sqlx for the host), and the crates
# whose features come out the same. Cargo names each unit by a hash of what it is built from, so
# a unit found under its name is reused, and one built differently gets a name of its own: links
# to FROM's units are read, never written. Not linked: the lock file (each directory keeps its
# own lock) and `incremental/` (the workspace's own crates, which cargo rewrites in place).
# Does nothing where TO/debug already has units, or FROM/debug has none.
set -euo pipefail
from=$1/debug to=$2/debug
[ -d "$from/.fingerprint" ] || exit 0
[ ! -d "$to/.fingerprint" ] || exit 0
mkdir -p "$to"
cp -al "$from/.fingerprint" "$from/build" "$from/deps" "$to/"
