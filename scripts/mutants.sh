#!/usr/bin/env bash
# `make mutants`: cargo-mutants over crates/sqs-batch, to show its tests bite: each mutant
# (a function body replaced, an operator flipped) must make a test fail. Not part of make test
# (minutes of CPU). cargo-mutants is pinned below and installed into .venv/cargo-mutants when
# missing; it copies the workspace into a temp dir and builds there, in its own target dir.
#
# The score and every survivor (killed by a new test since, or equivalent, with the reason) are
# in crates/sqs-batch/README.md. Outputs go to .run/mutants/mutants.out.
#
# Usage: scripts/mutants.sh [extra cargo-mutants arguments]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=27.1.0
install_root=$root/.venv/cargo-mutants
bin=$install_root/bin/cargo-mutants

if [ ! -x "$bin" ] || [ "$("$bin" mutants --version 2>/dev/null)" != "cargo-mutants $version" ]; then
  echo "mutants.sh: installing cargo-mutants $version into .venv/cargo-mutants (a few minutes, once)" >&2
  rm -rf "$install_root"
  env -u CARGO_TARGET_DIR cargo install --quiet --locked cargo-mutants --version "$version" --root "$install_root" >&2
fi

mkdir -p "$root/.run/mutants"
cd "$root"
# The crate's own tests with every feature (the examples' tests included); the doctests too.
exec env -u CARGO_TARGET_DIR "$bin" mutants --package sqs-batch --all-features --test-package sqs-batch \
  --output "$root/.run/mutants" --timeout 60 "$@"
