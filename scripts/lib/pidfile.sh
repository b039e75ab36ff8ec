# Sourced by the scripts that start a service in the background and keep its pid in a file
# (scripts/docker-engine.sh, scripts/localstack.sh), so that they stop what they started, and
# nothing else, in one way.

# stop_started NAME WHAT PIDFILE SECONDS process|group [FILE...]
# Stops the process in PIDFILE: SIGTERM, then up to SECONDS for it to end. `group` signals its
# whole process group (it was started under setsid, and its children must go with it) and
# SIGKILLs the group after the wait; `process` signals it alone and leaves it to finish. Then
# removes PIDFILE and the FILEs (state that belonged to that run). NAME prefixes the lines it
# prints; WHAT names the service when there is nothing to stop.
stop_started() {
  local name=$1 what=$2 pidfile=$3 seconds=$4 scope=$5
  shift 5
  [ -f "$pidfile" ] || { echo "$name: no $what started by this script"; return; }
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    if [ "$scope" = group ]; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    else
      kill -TERM "$pid"
    fi
    for _ in $(seq 1 $((seconds * 2))); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if [ "$scope" = group ]; then
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile" "$@"
  echo "$name: stopped"
}
