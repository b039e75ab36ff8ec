#!/usr/bin/env bash
# `make test`: what `sam local invoke -e events/batch.json --env-vars env.json` runs, without
# Docker. 1) every key of env.json is declared on the function (SAM silently drops the
# others); 2) the environment SAM would give the function is computed by the pinned SAM CLI's
# own code (template values < shell < env.json, plus SAM's AWS_* variables); 3) the function's
# binary runs with exactly that environment under AWS's Runtime Interface Emulator, the
# aws-lambda-rie that the pinned aws-sam-cli ships and runs inside SAM's container
# (scripts/rie.py), host.docker.internal resolving to this host as
# `--add-host host.docker.internal:host-gateway` makes it inside SAM's container.
# Checked under the emulator: events/batch.json loads (0 failures, 10 rows) and
# events/mixed.json names its 6 bad records and loads 4; every line logged during an
# invocation carries its requestId; the EMF line survives ApplicationLogLevel=WARN; a start-up
# failure is one JSON line and an init error; SIGTERM closes the database connections.
# The emulator sends no X-Ray trace header, so the trace-id check runs the same batch behind the
# project's own Runtime API (scripts/runtime_api_harness.py).
# The only change to env.json: DATABASE_URL names a scratch database, so the shared
# login_etl is untouched. SAM_LOCAL_RIE_PORT (default 9303, and 9304) and
# SAM_LOCAL_HARNESS_PORT (default 9301) pick the ports.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/tools.sh install
py=.venv/tools/bin/python
port=${SAM_LOCAL_HARNESS_PORT:-9301}
rie_port=${SAM_LOCAL_RIE_PORT:-9303} # and the next port, for its Runtime API
server=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/login_etl}
server=${server%/*}
scratch=login_etl_sam_local_test

$py scripts/sam_local_env.py check env.json

# The binaries of the test build (what `make test-rust` builds): one build of the code, not two
# with different features.
cargo test --quiet --no-run --lib --bins --tests
psql -q -X "$server/postgres" -c "DROP DATABASE IF EXISTS $scratch WITH (FORCE)"
DATABASE_URL=$server/$scratch target/debug/login-etl-cli migrate 2>/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"; psql -q -X "$server/postgres" -c "DROP DATABASE IF EXISTS $scratch WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
python3 - "$work" "$scratch" <<'PY'
import json, sys
work, scratch = sys.argv[1], sys.argv[2]
env = json.load(open("env.json"))
fn = env["LoginEtlFunction"]
fn["DATABASE_URL"] = fn["DATABASE_URL"].rsplit("/", 1)[0] + "/" + scratch
json.dump(env, open(f"{work}/env.json", "w"))
broken = json.loads(json.dumps(env))
broken["LoginEtlFunction"]["DATABASE_URL"] = ""
json.dump(broken, open(f"{work}/env-no-database.json", "w"))
PY

rie() { # ENV_JSON OUT EVENT... [-- Parameter=Value ...]: the bootstrap under aws-lambda-rie
  local env_json=$1 out=$2 events=() params=()
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do events+=("$1"); shift; done
  [ $# -gt 0 ] && shift && params=("$@")
  $py scripts/sam_local_env.py resolve "$env_json" "$work/sam-env.json" LoginEtlFunction "${params[@]}"
  python3 scripts/rie.py target/debug/login-etl "$work/sam-env.json" "$rie_port" "${events[@]}" \
    --host host.docker.internal=127.0.0.1 >"$out"
}
harness() { # ENV_JSON OUT: the bootstrap behind the project's harness (it sends an X-Ray trace id)
  $py scripts/sam_local_env.py resolve "$1" "$work/sam-env.json" LoginEtlFunction
  python3 scripts/runtime_api_harness.py target/debug/login-etl "$work/sam-env.json" events/batch.json "$port" \
    host.docker.internal=127.0.0.1 >"$2"
}
rows() { psql -tA -X "$server/$scratch" -c "SELECT count(*) FROM user_logins"; }

rie "$work/env.json" "$work/info.json" events/batch.json events/mixed.json
rows_info=$(rows)
psql -q -X "$server/$scratch" -c "TRUNCATE user_logins"
rie "$work/env.json" "$work/warn.json" events/batch.json -- ApplicationLogLevel=WARN
rie "$work/env-no-database.json" "$work/init-error.json" events/batch.json
psql -q -X "$server/$scratch" -c "TRUNCATE user_logins"
harness "$work/env.json" "$work/trace.json"

python3 - "$work" "$rows_info" <<'PY'
import json, sys
work, rows = sys.argv[1], int(sys.argv[2])

def docs(lines):
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}")
    return out

def invocation_docs(invocation, cold):
    """The bootstrap's lines of one invocation. The emulator starts the bootstrap at the first
    invocation, so on a cold start the lines before the first one tied to the request are the
    init phase's (configuration, masking key), which Lambda logs before any request exists."""
    logged = docs(invocation["lines"])
    if cold:
        first = next(i for i, d in enumerate(logged) if "requestId" in d)
        assert all("requestId" not in d for d in logged[:first])
        logged = logged[first:]
    return logged

info = json.load(open(f"{work}/info.json"))
batch, mixed = info["invocations"]
assert batch["status"] == 200 and batch["response"] == {"batchItemFailures": []}, batch
event_ids = {r["messageId"] for r in json.load(open("events/mixed.json"))["Records"]}
failed = {f["itemIdentifier"] for f in mixed["response"]["batchItemFailures"]}
assert mixed["status"] == 200 and len(failed) == 6 and failed <= event_ids, mixed["response"]
assert rows == 14, f"expected 14 rows (batch.json 10 + mixed.json 4), found {rows}"
for invocation, cold in ((batch, True), (mixed, False)):
    logged = invocation_docs(invocation, cold)
    assert logged, f"the invocation logged nothing: {invocation}"
    for doc in logged:
        assert doc.get("requestId") == invocation["requestId"], f"line without its request id: {doc}"
    emf = [d for d in logged if "_aws" in d and "RecordsInserted" in d]
    assert len(emf) == 1 and emf[0]["ColdStart"] == int(cold), emf
    summary = [d for d in logged if d.get("message") == "batch processed"]
    assert len(summary) == 1 and summary[0].get("coldStart") is cold, logged
assert [d for d in invocation_docs(batch, True) if "_aws" in d][0]["RecordsInserted"] == 10
assert any("connections closed" in line for line in info["shutdownLines"]), info["shutdownLines"]
print(f"sam local (aws-lambda-rie): batch.json loaded 10 rows, mixed.json 4 rows and named 6 failures; "
      f"every invocation line carries its requestId; SIGTERM closed the connections")

warn = json.load(open(f"{work}/warn.json"))
(batch,) = warn["invocations"]
assert batch["response"] == {"batchItemFailures": []}, batch
logged = invocation_docs(batch, True)
assert not [d for d in logged if "_aws" not in d and d.get("level") not in ("WARN", "ERROR")], logged
emf = [d for d in logged if "_aws" in d]
assert len(emf) == 1 and emf[0]["level"] == "WARN", f"the EMF line must be written at WARN: {logged}"
print("sam local (aws-lambda-rie): ApplicationLogLevel=WARN drops INFO lines and keeps the EMF line (level WARN)")

failed = json.load(open(f"{work}/init-error.json"))
(invocation,) = failed["invocations"]
error = invocation["response"]
assert invocation["status"] != 200 and error["errorType"] == "Runtime.ConfigError" \
    and "DATABASE_URL" in error["errorMessage"], invocation
lines = docs(invocation["lines"])
assert len(lines) == 1 and lines[0]["level"] == "ERROR" and "DATABASE_URL" in lines[0]["message"], lines
print(f"sam local (aws-lambda-rie): without a database, one JSON error line and an init error: {error['errorMessage']}")

trace = json.load(open(f"{work}/trace.json"))
assert trace.get("response") == {"batchItemFailures": []}, trace
logged = docs(trace["invocationLines"])
assert logged, "the invocation logged nothing"
for doc in logged:
    assert doc.get("requestId") == trace["requestId"], f"line without the request id: {doc}"
    assert doc.get("xrayTraceId") == trace["traceId"], f"line without the trace id: {doc}"
print(f"sam local (harness, which sends X-Ray trace ids): {len(logged)} invocation lines all carry requestId and xrayTraceId")
PY
