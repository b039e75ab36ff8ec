#!/usr/bin/env bash
# `make test`: `sam local invoke` as the design names it, in SAM's own Lambda container under
# AWS's Runtime Interface Emulator (scripts/sam-local.sh), with env.json's settings and the
# template's own parameters. The bootstrap is make test's debug build (no second build).
# Checked, one container per invocation as `sam local invoke` runs them:
#   - every key of env.json is declared on the function (SAM silently drops the others);
#   - events/batch.json loads 10 rows and answers {"batchItemFailures": []};
#   - events/mixed.json names its 6 bad records (and only records of that event), loads 4;
#   - every line the function logs during an invocation carries that invocation's requestId,
#     and the invocation writes one EMF document;
#   - --parameter-overrides ApplicationLogLevel=WARN drops INFO lines and keeps the EMF line.
# A start-up failure is not run here: SAM's emulator closes as soon as the bootstrap reports
# its init error, and SAM then waits 20 s and says only that it could not connect
# (docs/development.md); tests/it/function.rs checks the function's side of it.
# The one change to env.json: DATABASE_URL names a scratch database, so login_etl is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
server=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/login_etl}
server=${server%/*}
scratch=login_etl_sam_local_test

# The binaries of the test build (what `make test-rust` builds): one build of the code, not two.
cargo test --quiet --no-run --lib --bins --tests
export SAM_LOCAL_BOOTSTRAP=${CARGO_TARGET_DIR:-target}/debug/login-etl
# SAM asks STS for the account id; LocalStack answers at once where AWS cannot be reached.
export AWS_ENDPOINT_URL_STS=${AWS_ENDPOINT_URL_STS:-${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}}
PGOPTIONS="-c client_min_messages=warning" psql -q -X "$server/postgres" -c "DROP DATABASE IF EXISTS $scratch WITH (FORCE)"
DATABASE_URL=$server/$scratch "${CARGO_TARGET_DIR:-target}/debug/login-etl-cli" migrate 2>/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"; psql -q -X "$server/postgres" -c "DROP DATABASE IF EXISTS $scratch WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
scripts/tools.sh install
"$(scripts/tools.sh path)/python" - "$work" "$scratch" <<'PY'
import json, sys
from samcli.yamlhelper import yaml_parse
work, scratch = sys.argv[1], sys.argv[2]
env = json.load(open("env.json"))
declared = yaml_parse(open("template.yaml").read())["Resources"]["LoginEtlFunction"]["Properties"]["Environment"]["Variables"]
undeclared = sorted(set(env["LoginEtlFunction"]) - set(declared))
assert not undeclared, f"env.json sets {undeclared}, not declared on LoginEtlFunction in template.yaml: sam local invoke drops them"
print(f"sam local: every key of env.json is declared on LoginEtlFunction ({len(env['LoginEtlFunction'])} keys)")
fn = env["LoginEtlFunction"]
fn["DATABASE_URL"] = fn["DATABASE_URL"].rsplit("/", 1)[0] + "/" + scratch
json.dump(env, open(f"{work}/env.json", "w"))
PY

invoke() { # NAME EVENT ENV_JSON [Parameter=Value ...]: response in NAME.json, logs in NAME.log
  local name=$1 event=$2 env_json=$3 attempt
  shift 3
  for attempt in 1 2 3; do
    scripts/sam-local.sh "$event" "$env_json" -- "$@" >"$work/$name.json" 2>"$work/$name.log" || {
      echo "sam local invoke ($name) failed; its output:" >&2
      cat "$work/$name.log" "$work/$name.json" >&2
      exit 1
    }
    [ "$name" != batch ] || [ "$attempt" != 1 ] || grep -m1 'cannot be pulled' "$work/$name.log" || true
    # SAM prints the container's lines only until 1 s after the response (it waits for a REPORT
    # line in a format this emulator no longer writes); on a loaded machine they can all come
    # later and be lost. The invocation itself is idempotent, so it is run again.
    grep -q '^{.*"requestId"' "$work/$name.log" && return
    echo "sam local invoke ($name): SAM printed none of the function's lines within its 1 s window; again" >&2
  done
}
rows() { psql -tA -X "$server/$scratch" -c "SELECT count(*) FROM user_logins"; }

invoke batch events/batch.json "$work/env.json"
rows_batch=$(rows)
invoke mixed events/mixed.json "$work/env.json"
rows_mixed=$(rows)
psql -q -X "$server/$scratch" -c "TRUNCATE user_logins"
invoke warn events/batch.json "$work/env.json" ApplicationLogLevel=WARN

python3 - "$work" "$rows_batch" "$rows_mixed" <<'PY'
import json, re, sys
work, rows_batch, rows_mixed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
MARK = re.compile(r"^(START) RequestId: ([0-9a-f-]+)")

def run(name):
    """The response, and the function's JSON lines from its first line that names a request
    (the lines before it are the init phase's, logged before any request exists). SAM prints
    the container's output as Docker streams it: the init lines and the emulator's START line
    may come on either side of each other, or (on a loaded machine) not at all; so the request
    id is the emulator's START line's when SAM printed it, else the first such line's."""
    response = json.load(open(f"{work}/{name}.json"))
    logged, started = [], None
    for line in open(f"{work}/{name}.log"):
        mark = MARK.match(line)
        if mark:
            started = started or mark.group(2)
        elif line.startswith("{"):
            logged.append(json.loads(line))
    first = next((i for i, d in enumerate(logged) if "requestId" in d), None)
    assert first is not None, f"{name}: no invocation lines in SAM's output:\n" + open(f"{work}/{name}.log").read()
    return response, logged[first:], started or logged[first]["requestId"]

def one_emf(name, lines):
    emf = [d for d in lines if "_aws" in d and "RecordsReceived" in d]
    assert len(emf) == 1 and emf[0]["ColdStart"] == 1, f"{name}: expected one cold-start EMF document: {emf}"
    return emf[0]

response, lines, request_id = run("batch")
assert response == {"batchItemFailures": []}, response
assert rows_batch == 10, f"batch.json: expected 10 rows, found {rows_batch}"
assert all(d.get("requestId") == request_id for d in lines), f"a line without its requestId: {lines}"
emf = one_emf("batch", lines)  # a second attempt finds the first one's rows: duplicates
assert emf["RecordsInserted"] + emf["RecordsDuplicate"] == 10 and emf["RecordsFailed"] == 0, emf
print(f"sam local invoke -e events/batch.json: {json.dumps(response)}, 10 rows; "
      f"its {len(lines)} lines each carry requestId {request_id}")

response, lines, request_id = run("mixed")
event_ids = {r["messageId"] for r in json.load(open("events/mixed.json"))["Records"]}
failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
assert len(failed) == 6 and failed <= event_ids, response
assert rows_mixed == 14, f"mixed.json: expected 4 more rows (14), found {rows_mixed}"
assert all(d.get("requestId") == request_id for d in lines), f"a line without its requestId: {lines}"
assert one_emf("mixed", lines)["RecordsFailed"] == 6
print("sam local invoke -e events/mixed.json: 6 batchItemFailures, all of the event's messages, 4 rows")

response, lines, _ = run("warn")
assert response == {"batchItemFailures": []}, response
assert not [d for d in lines if "_aws" not in d and d.get("level") not in ("WARN", "ERROR")], lines
assert all(d["level"] == "WARN" for d in lines if "_aws" in d), lines
assert one_emf("warn", lines)["level"] == "WARN", f"the EMF line must be written at WARN: {lines}"
print("sam local invoke (ApplicationLogLevel=WARN): no INFO lines, the EMF line kept at WARN")

PY
