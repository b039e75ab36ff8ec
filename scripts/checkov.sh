#!/usr/bin/env bash
# The template's security scan: checkov (pinned: tools/python's `checkov` group) in its
# own venv .venv/checkov, offline, over template.yaml with the CloudFormation framework.
# Usage: scripts/checkov.sh install   sync the venv with its pins (nothing to do when it is current)
#        scripts/checkov.sh path      print the venv's bin directory
#        scripts/checkov.sh scan      install, scan, print passed/failed/skipped; exit 1 on any
#                                     failed check or on a skip without a written reason
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.venv/checkov
template=$root/template.yaml

install() {
  # One sync at a time (make test installs in the background while other steps run).
  mkdir -p "$root/.venv"
  exec 8>"$root/.venv/.checkov.lock"
  flock 8
  "$root/scripts/uv-sync.sh" checkov "$venv" 3.11
}

scan() {
  install
  local out=$root/.run/checkov
  rm -rf "$out" && mkdir -p "$out"
  # --skip-download: no guideline or policy download from Prisma Cloud (offline, and the same
  # checks everywhere). checkov exits 1 on a failed check; the summary below says which.
  local status=0
  "$venv/bin/checkov" --file "$template" --framework cloudformation --skip-download --compact \
    --output cli --output json --output-file-path "console,$out/results.json" >"$out/cli.txt" 2>"$out/stderr.txt" || status=$?
  # The full report (every passed check too) stays in .run/checkov/cli.txt; failures and skips
  # are printed below.
  "$venv/bin/python" - "$template" "$out/results.json" "$status" <<'PY'
import json, sys
import yaml

template_path, results_path, status = sys.argv[1], sys.argv[2], int(sys.argv[3])

# Every Metadata skip in the template needs its reason (checkov itself accepts a skip without
# one and reports "No comment provided").
class AnyTagLoader(yaml.SafeLoader):
    pass

AnyTagLoader.add_multi_constructor("!", lambda loader, suffix, node: None)
with open(template_path) as file:
    template = yaml.load(file, Loader=AnyTagLoader)
unreasoned = []
for name, resource in (template.get("Resources") or {}).items():
    skips = (((resource or {}).get("Metadata") or {}).get("checkov") or {}).get("skip") or []
    for skip in skips:
        if not str(skip.get("comment") or "").strip():
            unreasoned.append(f"{name}: {skip.get('id')}")

try:
    with open(results_path) as file:
        results = json.load(file)
except (OSError, ValueError) as err:
    sys.exit(f"checkov.sh: checkov wrote no JSON results ({err}); exit status {status}")
summary = results["summary"]
for check in results["results"].get("failed_checks", []):
    lines = "-".join(str(n) for n in check.get("file_line_range", []))
    print(f"  FAILED {check['check_id']} on {check['resource']} (template.yaml:{lines}): {check['check_name']}")
for check in results["results"].get("skipped_checks", []):
    comment = (check.get("check_result") or {}).get("suppress_comment", "")
    print(f"  skipped {check['check_id']} on {check['resource']}: {' '.join(comment.split())[:100]}...")
    if not comment.strip() or comment == "No comment provided":
        unreasoned.append(f"{check['resource']}: {check['check_id']}")
print(f"checkov: passed {summary['passed']}, failed {summary['failed']}, skipped {summary['skipped']}")
for entry in sorted(set(unreasoned)):
    print(f"checkov.sh: skip without a reason: {entry}", file=sys.stderr)
if summary["failed"] or unreasoned or summary["parsing_errors"] or status not in (0, 1):
    sys.exit(1)
PY
}

case ${1:-} in
  install) install ;;
  path) echo "$venv/bin" ;;
  scan) scan ;;
  *) echo "usage: $0 install|path|scan" >&2; exit 2 ;;
esac
