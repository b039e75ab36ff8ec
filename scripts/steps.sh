#!/usr/bin/env bash
# `make test`: run make targets in order, each timed, and print where the time went.
# Usage: scripts/steps.sh TARGET... (a target written bg:TARGET starts in the background)
#
# A background target runs beside the ones after it, its output kept in .run/steps/TARGET.log
# and printed when the run ends: that is for work that needs the CPU while later steps mostly
# wait (installing pinned venvs while cargo compiles; the release arm64 build while the tests
# wait on PostgreSQL and LocalStack). Targets that share a resource take its lock
# (scripts/tools.sh, scripts/services.sh), so a foreground step that needs it waits for it.
#
# Stops at the first foreground target that fails (as make would), after waiting for the
# background ones, and still prints the table, so a slow or failing step is named. Seconds are
# wall clock for this run on this machine; a background step's overlap the others.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .run/steps
names=() seconds=() pids=() background=()
total_start=$EPOCHREALTIME
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

run_background() { # TARGET: time it into .run/steps/TARGET.seconds, exit status in .status
  local target=$1 start=$EPOCHREALTIME
  make --no-print-directory "$target" >".run/steps/$target.log" 2>&1
  local status=$?
  since "$start" >".run/steps/$target.seconds"
  echo "$status" >".run/steps/$target.status"
}

finish() { # EXIT-STATUS: wait for the background targets, print their output and the table
  local status=$1 i target
  for i in "${!pids[@]}"; do
    target=${background[$i]}
    wait "${pids[$i]}"
    echo "==> make $target (ran in the background; its output)"
    cat ".run/steps/$target.log"
    names+=("$target (background)")
    seconds+=("$(cat ".run/steps/$target.seconds")")
    if [ "$(cat ".run/steps/$target.status")" != 0 ]; then
      names[-1]="$target (background, FAILED)"
      [ "$status" != 0 ] || status=$(cat ".run/steps/$target.status")
    fi
  done
  echo
  echo "make test: seconds per step"
  for i in "${!names[@]}"; do printf '  %-30s %7s s\n' "${names[$i]}" "${seconds[$i]}"; done
  printf '  %-30s %7s s\n' "total (wall clock)" "$(since "$total_start")"
  exit "$status"
}

for target in "$@"; do
  if [ "${target#bg:}" != "$target" ]; then
    target=${target#bg:}
    echo "==> make $target (in the background: .run/steps/$target.log)"
    rm -f ".run/steps/$target.status"
    run_background "$target" &
    pids+=($!)
    background+=("$target")
    continue
  fi
  echo "==> make $target"
  start=$EPOCHREALTIME
  make --no-print-directory "$target"
  status=$?
  names+=("$target")
  seconds+=("$(since "$start")")
  if [ "$status" != 0 ]; then
    names[-1]="$target (FAILED)"
    finish "$status"
  fi
done
finish 0
