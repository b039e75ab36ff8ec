#!/usr/bin/env bash
# make member-check: every workspace member built and tested on its own, `cargo test -p MEMBER`,
# as someone who depends on that one crate (or works on it alone) builds it.
#
# Why a step of its own: make test's other builds select the whole workspace, and cargo unifies
# the features of everything selected. A member that forgets a feature it needs still compiles
# there, because a sibling turned the feature on (a member's `cargo test -p` once failed with
# E0277 while the workspace build passed). Alone, each member resolves only its own dependencies
# and dev-dependencies.
#
# - Every member but the root package: `cargo test -p MEMBER` (unit, integration, example and
#   doc tests; none of them needs PostgreSQL or LocalStack).
# - The root package (login-etl): its unit tests run alone (one of them takes a PostgreSQL
#   session, DATABASE_URL: `make member-check` starts the services first); its integration suite (tests/it) is
#   built alone and must be the very binary the workspace's build made, the one `make
#   test-rust` runs against PostgreSQL and LocalStack. It is: the root's dev-dependencies are
#   the other members, so alone it resolves the workspace's features. Running the suite twice
#   would cost two minutes for nothing; if the binaries ever differ, this step says so and
#   fails, and the fix is to give the root's dependencies the features the difference names.
#
# Runs in its own target directory (CARGO_TARGET_DIR/members), seeded with hard links from the
# workspace build (scripts/target-seed.sh), so only what resolves differently compiles; at
# BUILD_NICE (make test runs it in the background beside the integration steps).
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${CARGO_TARGET_DIR:-target}
scripts/target-seed.sh "$shared" "$shared/members"
export CARGO_TARGET_DIR=$shared/members
renice -n "${BUILD_NICE:-0}" $$ >/dev/null

# The root package's name first, then the other members'.
read -r root members < <(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
meta = json.load(sys.stdin)
root = next(p["name"] for p in meta["packages"] if p["manifest_path"] == meta["workspace_root"] + "/Cargo.toml")
print(root, *sorted(p["name"] for p in meta["packages"] if p["name"] != root))')

for member in $members; do
  echo "==> cargo test -p $member (alone)"
  cargo test -p "$member" --quiet
done

echo "==> cargo test -p $root --lib --bins (alone)"
cargo test -p "$root" --lib --bins --quiet

# Each integration-test target of the selection CARGO-ARGS name, and its executable (the path
# carries the hash of everything it was built from).
suites() { # CARGO-ARGS...
  cargo test "$@" --tests --no-run --message-format=json --quiet | python3 -c '
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message["target"]["kind"] == ["test"] and message.get("executable"):
        print(message["target"]["name"], message["executable"])'
}
alone=$(suites -p "$root")
workspace=$(suites --workspace)
echo "==> $root's integration tests, built alone:"
printf '  %s\n' "$alone"
# Any line built alone that the workspace build did not make (another hash) is a difference.
if [ -z "$alone" ] || grep -Fxv -f <(printf '%s\n' "$workspace") <<<"$alone" >/dev/null; then
  echo "member-check: $root's integration tests built alone are not the binaries the workspace build makes (and make test-rust runs); the workspace build's test binaries:" >&2
  printf '  %s\n' "$workspace" >&2
  echo "  alone, their dependencies resolve other features: give $root's dependencies the features that differ" >&2
  exit 1
fi
echo "  the same binaries the workspace build made, which make test-rust runs"
