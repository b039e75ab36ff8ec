#!/usr/bin/env bash
# SAM checks for `make test`: lint the template and build the function with cargo-lambda.
# Usage: scripts/sam.sh validate|build   (sam local invoke: scripts/sam-local.sh)
# (the pinned SAM CLI needs no --beta-features for the rust-cargolambda builder any more).
# Uses the pinned tools in .venv/tools. SAM wants a region and credentials even offline, so
# dummy ones are set; nothing is sent to AWS.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/tools.sh install
PATH="$(scripts/tools.sh path):$PATH"
export PATH AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1} SAM_CLI_TELEMETRY=0
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
unset AWS_ENDPOINT_URL

case ${1:-} in
  validate)
    sam validate --lint --template template.yaml
    # Each scaling mode as CloudFormation resolves it (LanguageExtensions, then SAM).
    python scripts/check_template_modes.py template.yaml 2> >(grep -v "unpublished metrics" >&2)
    ;;
  build)
    overrides=()
    # The template deploys arm64, which needs the aarch64 Rust standard library. Fetch it if
    # missing; where it cannot be fetched (offline), build the same template for x86_64.
    target=aarch64-unknown-linux-gnu
    if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
      timeout 180 rustup target add "$target" >&2 || true
    fi
    if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
      echo "sam.sh: the $target Rust std is not installed and could not be fetched; building with Architecture=x86_64" >&2
      overrides=(--parameter-overrides Architecture=x86_64)
    fi
    # Its own target directory: a release build for another architecture shares nothing with
    # the debug builds, and in target/ it would hold cargo's lock on that directory while
    # make test's other steps (which run beside it) want to build there.
    export CARGO_TARGET_DIR=$PWD/target/sam
    # The artifact is built as a deploy builds it: by rustc itself, not under make test's
    # clippy wrapper (Makefile, CLIPPY_WRAPPER), which lints the debug build.
    unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
    sam build --no-cached "${overrides[@]}"
    bootstrap=.aws-sam/build/LoginEtlFunction/bootstrap
    file "$bootstrap" 2>/dev/null || true
    zipped=$(mktemp -d)/bootstrap.zip
    (cd "$(dirname "$bootstrap")" && zip -9 -q "$zipped" bootstrap)
    echo "bootstrap: $(stat -c %s "$bootstrap") bytes, $(stat -c %s "$zipped") bytes zipped (zip -9)"
    rm -rf "$(dirname "$zipped")"
    ;;
  *) echo "usage: $0 validate|build" >&2; exit 2 ;;
esac
