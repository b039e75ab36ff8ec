#!/usr/bin/env bash
# SAM checks for `make test`: lint the template and build the function with cargo-lambda.
# Usage: scripts/sam.sh validate|build
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
  validate) sam validate --lint --template template.yaml ;;
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
    sam build --beta-features "${overrides[@]}"
    file .aws-sam/build/LoginEtlFunction/bootstrap 2>/dev/null || true
    ls -l .aws-sam/build/LoginEtlFunction/bootstrap
    ;;
  *) echo "usage: $0 validate|build" >&2; exit 2 ;;
esac
