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
# wall clock for this run on this machine; a background step's overlap the others. CPU seconds
# (user + system, of the step's own processes; not of what it runs in containers) show what a
# step costs the two cores whatever ran beside it.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .run/steps
names=() seconds=() cpu=() pids=() background=()
total_start=$EPOCHREALTIME
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
# make TARGET, its CPU seconds (user + system of it and its children) written to FILE.
timed_make() { # FILE TARGET
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -o "$1" -f '%U %S' make --no-print-directory "$2"
  else
    make --no-print-directory "$2"
  fi
}
cpu_of() { awk 'NF == 2 && $1 ~ /^[0-9.]+$/ { printf "%.1f", $1 + $2; found = 1 } END { if (!found) printf "?" }' "$1" 2>/dev/null || printf '?'; }

run_background() { # TARGET: time it into .run/steps/TARGET.seconds, exit status in .status
  local target=$1 start=$EPOCHREALTIME
  timed_make ".run/steps/$target.cpu" "$target" >".run/steps/$target.log" 2>&1
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
    cpu+=("$(cpu_of ".run/steps/$target.cpu")")
    if [ "$(cat ".run/steps/$target.status")" != 0 ]; then
      names[-1]="$target (background, FAILED)"
      [ "$status" != 0 ] || status=$(cat ".run/steps/$target.status")
    fi
  done
  echo
  echo "make test: seconds per step (wall clock, and CPU seconds)"
  for i in "${!names[@]}"; do printf '  %-30s %7s s %8s CPU-s\n' "${names[$i]}" "${seconds[$i]}" "${cpu[$i]}"; done
  # `times` in this shell (not in a command substitution, whose children are its own): the CPU
  # of every step this script waited for, foreground and background.
  times >.run/steps/times
  printf '  %-30s %7s s %8s CPU-s\n' "total (wall clock)" "$(since "$total_start")" "$(awk 'NR == 2 { split($1, u, "m"); split($2, s, "m"); printf "%.1f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' .run/steps/times)"
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
  timed_make ".run/steps/$target.cpu" "$target"
  status=$?
  names+=("$target")
  seconds+=("$(since "$start")")
  cpu+=("$(cpu_of ".run/steps/$target.cpu")")
  if [ "$status" != 0 ]; then
    names[-1]="$target (FAILED)"
    finish "$status"
  fi
done
finish 0
