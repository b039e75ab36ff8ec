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
    python tools/python/check_template_modes.py template.yaml 2> >(grep -v "unpublished metrics" >&2)
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
    main_target=${CARGO_TARGET_DIR:-$PWD/target}
    export CARGO_TARGET_DIR=$PWD/target/sam
    # The artifact is built as a deploy builds it: by rustc itself, not under make test's
    # clippy wrapper (Makefile, CLIPPY_WRAPPER), which lints the debug build.
    unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
    # SAM_BUILD_CHECK=debug (make test): the same template, builder, cargo-lambda and zig
    # cross-compile to arm64, in cargo's dev profile (SAM's own SAM_BUILD_MODE=debug). The
    # release profile's thin LTO over one codegen unit is what deploys; it took about 610
    # CPU-seconds of make test's 1,390, against about 400 for this check
    # (docs/figures.md#make-test-on-a-fresh-clone). `make sam-build` alone builds release.
    mode=release
    if [ "${SAM_BUILD_CHECK:-}" = debug ]; then mode=debug; export SAM_BUILD_MODE=debug; else unset SAM_BUILD_MODE; fi
    # In the dev profile the host's build scripts and proc-macros are lint-build's own.
    [ $mode != debug ] || scripts/target-seed.sh "$main_target" "$CARGO_TARGET_DIR"
    sam build --no-cached "${overrides[@]}"
    bootstrap=.aws-sam/build/LoginEtlFunction/bootstrap
    file "$bootstrap" 2>/dev/null || true
    # `sam deploy` deploys .aws-sam/build/template.yaml with its parameters' defaults: after
    # the x86_64 fallback that default would still say arm64, and the function would fail at
    # init. So the built template's Architecture default is the bootstrap's own (its ELF
    # e_machine: 183 aarch64, 62 x86-64), and this fails if the two ever disagree.
    machine=$(od -An -tu2 -j18 -N2 "$bootstrap" | tr -d ' ')
    case $machine in 183) built_arch=arm64 ;; 62) built_arch=x86_64 ;; *) echo "sam.sh: bootstrap e_machine $machine?" >&2; exit 1 ;; esac
    python - "$built_arch" <<'PY'
import sys
from samcli.yamlhelper import yaml_dump, yaml_parse
path, arch = ".aws-sam/build/template.yaml", sys.argv[1]
template = yaml_parse(open(path).read())
if template["Parameters"]["Architecture"].get("Default") != arch:
    template["Parameters"]["Architecture"]["Default"] = arch
    open(path, "w").write(yaml_dump(template))
    print(f"sam.sh: .aws-sam/build/template.yaml deploys Architecture={arch} by default (the bootstrap's)", file=sys.stderr)
PY
    echo "sam.sh: the bootstrap is $built_arch, and so is the built template's Architecture default"
    zipped=$(mktemp -d)/bootstrap.zip
    (cd "$(dirname "$bootstrap")" && zip -9 -q "$zipped" bootstrap)
    echo "bootstrap ($mode build): $(stat -c %s "$bootstrap") bytes, $(stat -c %s "$zipped") bytes zipped (zip -9)"
    rm -rf "$(dirname "$zipped")"
    ;;
  *) echo "usage: $0 validate|build" >&2; exit 2 ;;
esac
