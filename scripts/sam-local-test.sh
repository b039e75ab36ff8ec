#!/usr/bin/env bash
# `make test`: what `sam local invoke -e events/batch.json --env-vars env.json` runs, without
# Docker. 1) every key of env.json is declared on the function (SAM silently drops the
# others); 2) the environment SAM would give the function is computed by the pinned SAM CLI's
# own code (template values < shell < env.json, plus SAM's AWS_* variables); 3) the function's
# binary runs with exactly that environment behind a local Runtime API
# (scripts/runtime_api_harness.py), host.docker.internal resolving to this host as
# `--add-host host.docker.internal:host-gateway` makes it inside SAM's container.
# Checked: the batch loads (0 failures, 10 rows), every line logged during the invocation
# carries its requestId and X-Ray trace id, the EMF line survives ApplicationLogLevel=WARN,
# and a start-up failure is one JSON line and a report to /runtime/init/error.
# The only change to env.json: DATABASE_URL names a scratch database, so the shared
# login_etl is untouched. SAM_LOCAL_HARNESS_PORT picks the harness port (default 9301).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/tools.sh install
py=.venv/tools/bin/python
port=${SAM_LOCAL_HARNESS_PORT:-9301}
server=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/login_etl}
server=${server%/*}
scratch=login_etl_sam_local_test

$py scripts/sam_local_env.py check env.json

cargo build --quiet --bins
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

run() { # ENV_JSON OUT [Parameter=Value ...]
  local env_json=$1 out=$2
  shift 2
  $py scripts/sam_local_env.py resolve "$env_json" "$work/sam-env.json" LoginEtlFunction "$@"
  python3 scripts/runtime_api_harness.py target/debug/login-etl "$work/sam-env.json" events/batch.json "$port" \
    host.docker.internal=127.0.0.1 >"$out"
}
run "$work/env.json" "$work/info.json"
rows_info=$(psql -tA -X "$server/$scratch" -c "SELECT count(*) FROM user_logins")
psql -q -X "$server/$scratch" -c "TRUNCATE user_logins"
run "$work/env.json" "$work/warn.json" ApplicationLogLevel=WARN
run "$work/env-no-database.json" "$work/init-error.json"

python3 - "$work" "$rows_info" <<'PY'
import json, sys
work, rows = sys.argv[1], int(sys.argv[2])

def lines(result):
    out = []
    for line in result["invocationLines"]:
        try:
            out.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}")
    return out

info = json.load(open(f"{work}/info.json"))
assert "initError" not in info, info.get("initError")
assert info.get("response") == {"batchItemFailures": []}, info
assert rows == 10, f"expected 10 rows from events/batch.json, found {rows}"
logged = lines(info)
assert logged, "the invocation logged nothing"
for doc in logged:
    assert doc.get("requestId") == info["requestId"], f"line without the request id: {doc}"
    assert doc.get("xrayTraceId") == info["traceId"], f"line without the trace id: {doc}"
emf = [d for d in logged if "_aws" in d]
assert len(emf) == 1 and emf[0]["RecordsInserted"] == 10 and emf[0]["ColdStart"] == 1, emf
assert any(d.get("message") == "batch processed" and d.get("coldStart") is True for d in logged), logged
print(f"sam local (harness): batch.json loaded 10 rows, {len(logged)} invocation lines all carry requestId and xrayTraceId")

warn = json.load(open(f"{work}/warn.json"))
assert warn.get("response") == {"batchItemFailures": []}, warn
logged = lines(warn)
assert not [d for d in logged if "_aws" not in d and d.get("level") not in ("WARN", "ERROR")], logged
emf = [d for d in logged if "_aws" in d]
assert len(emf) == 1 and emf[0]["level"] == "WARN", f"the EMF line must be written at WARN: {logged}"
print("sam local (harness): ApplicationLogLevel=WARN drops INFO lines and keeps the EMF line (level WARN)")

failed = json.load(open(f"{work}/init-error.json"))
error = failed.get("initError")
assert error and error["errorType"] == "Runtime.ConfigError" and "DATABASE_URL" in error["errorMessage"], failed
assert failed["exitCode"] not in (0, None), failed
init = [json.loads(l) for l in failed["initLines"]]
assert any(d["level"] == "ERROR" and "DATABASE_URL" in d["message"] for d in init), failed["initLines"]
print(f"sam local (harness): without a database, one JSON error line and /init/error: {error['errorMessage']}")
PY
