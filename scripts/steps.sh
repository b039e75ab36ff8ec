#!/usr/bin/env bash
# `make test`: run make targets in order, each timed, and print where the time went.
# Usage: scripts/steps.sh TARGET...
# Stops at the first target that fails (as make would) and still prints the table so far, so a
# slow or failing step is named. Seconds are wall clock, on this machine, for this run.
set -uo pipefail
cd "$(dirname "$0")/.."
names=() seconds=() total_start=$EPOCHREALTIME status=0
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
report() {
  local total
  total=$(since "$total_start")
  echo
  echo "make test: seconds per step"
  for i in "${!names[@]}"; do printf '  %-22s %7s s\n' "${names[$i]}" "${seconds[$i]}"; done
  printf '  %-22s %7s s\n' total "$total"
}
for target in "$@"; do
  echo "==> make $target"
  start=$EPOCHREALTIME
  make --no-print-directory "$target"
  status=$?
  names+=("$target")
  seconds+=("$(since "$start")")
  if [ "$status" != 0 ]; then
    names[-1]="$target (FAILED)"
    report
    exit "$status"
  fi
done
report
