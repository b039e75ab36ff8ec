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
# The crate's own tests (the examples' tests and the doctests included) with the features that
# need no AWS SDK; src/visibility.rs (the `sqs` feature) is exercised against LocalStack by the
# workspace's tests/it/drain/outage.rs instead, so it is left out here, as are the `testing`
# builders, the examples and the benchmark (tests and tools, not the crate's behaviour).
# `scripts/mutants.sh -- --lib --examples` skips the doctests (faster; what the README's score
# was measured with).
exec env -u CARGO_TARGET_DIR "$bin" mutants --package sqs-batch --features testing,tracing,lambda \
  --exclude 'crates/sqs-batch/src/visibility.rs' --exclude 'crates/sqs-batch/src/testing.rs' \
  --exclude 'crates/sqs-batch/examples/**' --exclude 'crates/sqs-batch/benches/**' \
  --output "$root/.run/mutants" --timeout 60 "$@"
