#!/usr/bin/env bash
# Fuzzes the pure path (fuzz/fuzz_targets/sqs_event.rs) with cargo fuzz (libFuzzer).
# Usage: scripts/fuzz.sh [SECONDS]   (FUZZ_SECONDS, default 60; FUZZ_JOBS parallel workers)
# Seeds the corpus from events/*.json (whole events and each record's body). Needs a nightly
# toolchain and cargo-fuzz (installed from crates.io when missing). A crash is written to
# fuzz/artifacts/sqs_event/; keep it as a regression test in a test in tests/it/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-${FUZZ_SECONDS:-60}}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
corpus=fuzz/corpus/sqs_event
mkdir -p "$corpus"
python3 - "$corpus" <<'PY'
import hashlib, json, pathlib, sys
corpus = pathlib.Path(sys.argv[1])
for path in sorted(pathlib.Path("events").glob("*.json")):
    text = path.read_text()
    seeds = [text] + [r.get("body") or "" for r in json.loads(text)["Records"]]
    for seed in seeds:
        (corpus / hashlib.sha1(seed.encode()).hexdigest()).write_text(seed)
PY
exec cargo +nightly fuzz run sqs_event --jobs "${FUZZ_JOBS:-1}" -- -max_total_time="$seconds" -print_final_stats=1
