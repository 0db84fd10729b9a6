# Shared shell functions for e2e steps; source it from a step:
#   . "$(dirname "$0")/lib.sh"
# Needs E2E_SIPHON and E2E_STEP_DIR (set by scripts/e2e).
set -euo pipefail

: "${E2E_SIPHON:?run steps through scripts/e2e}"
: "${E2E_STEP_DIR:?run steps through scripts/e2e}"

e2e_pids=()

# Kill everything the step started, and show siphon's log tail on failure.
e2e_cleanup() {
  local rc=$?
  for pid in "${e2e_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$rc" -ne 0 ] && [ -f "$E2E_STEP_DIR/siphon.log" ]; then
    echo "--- last lines of siphon.log" >&2
    tail -n 40 "$E2E_STEP_DIR/siphon.log" >&2
  fi
  exit "$rc"
}
trap e2e_cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# The scheme siphon's HTTP listener speaks (start_siphon's third argument).
e2e_scheme=http

# start_siphon <config.toml> <http port> [https]: run siphon in the background
# and wait until /readyz answers (fails the step after 20 s or if siphon exits).
start_siphon() {
  local config="$1" port="$2"
  e2e_scheme="${3:-http}"
  "$E2E_SIPHON" check-config "$config" || fail "test config $config is invalid"
  "$E2E_SIPHON" --config "$config" run >"$E2E_STEP_DIR/siphon.log" 2>&1 &
  local pid=$!
  e2e_pids+=("$pid")
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || fail "siphon exited at start"
    if curl -kfsS "$e2e_scheme://127.0.0.1:$port/readyz" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  fail "siphon not ready on port $port after 20 s"
}

# start_bg <name> <command...>: a peer in the background, output in <name>.log;
# fails the step if it is gone after half a second.
start_bg() {
  local name="$1"; shift
  "$@" >"$E2E_STEP_DIR/$name.log" 2>&1 &
  local pid=$!
  e2e_pids+=("$pid")
  sleep 0.5
  kill -0 "$pid" 2>/dev/null || { cat "$E2E_STEP_DIR/$name.log" >&2; fail "$name did not start"; }
}

# metric <http port> <name{labels}>: one value from /metrics, 0 when absent.
metric() {
  curl -kfsS "$e2e_scheme://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print 0 }'
}
