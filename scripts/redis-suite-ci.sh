#!/usr/bin/env bash
# Runs Redis 7.0.15's own Tcl test suite (../shared/compat/redis-suite.sh, core + extra
# units) against a fresh release node and fails if fewer tests pass than the floor
# recorded in tests/compat/redis-suite.floor. The floor only goes up: an issue that makes
# more tests pass raises it to the count it reached.
#
# Usage: scripts/redis-suite-ci.sh [path/to/cordis]   (default: target/release/cordis)
#
# The suite FLUSHALLs and reconfigures its target, so each attempt gets its own node
# (--port 0, port read from the ready line), stopped by PID afterwards. A count below the
# floor is retried once on a new node, so one timing-sensitive test on a loaded machine
# does not fail CI; two runs below the floor do.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${1:-target/release/cordis}"
SUITE="${REDIS_SUITE:-../shared/compat/redis-suite.sh}"
FLOOR_FILE=tests/compat/redis-suite.floor
READY_TIMEOUT_S=10
SUITE_TIMEOUT_S=1500

fail() {
    echo "redis-suite-ci: FAIL: $*" >&2
    exit 1
}

[[ -x "$BIN" ]] || fail "cordis binary '$BIN' not found (cargo build --release first)"
[[ -f "$SUITE" ]] || fail "Redis's suite runner '$SUITE' not found (see ../shared/compat/README.md)"
command -v tclsh >/dev/null 2>&1 || fail "tclsh not found (apt-get install -y tcl)"
FLOOR="$(tr -dc '0-9' <"$FLOOR_FILE")"
[[ -n "$FLOOR" ]] || fail "$FLOOR_FILE holds no number"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cordis-suite.XXXXXX")"
PID=""

stop_node() {
    if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$PID" 2>/dev/null && kill -KILL "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null || true
    fi
    PID=""
}

cleanup() {
    local status=$?
    set +e
    stop_node
    rm -rf "$WORK"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts a node, runs the suite against it, and sets PASSED to the passed count (empty
# if the suite printed no summary). Runs in this shell, so the EXIT trap can always stop
# the node it started.
PASSED=""
run_once() {
    local attempt=$1 out="$WORK/node-$1.out" port=""
    # Its own dir: the suite SAVEs and DEBUG RELOADs, and no stray dump.rdb is loaded.
    "$BIN" --bind 127.0.0.1 --port 0 --dir "$WORK" >"$out" 2>"$WORK/node-$attempt.err" &
    PID=$!
    local deadline=$((SECONDS + READY_TIMEOUT_S))
    while [[ -z "$port" ]]; do
        port="$(sed -n 's/^cordis ready: listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$out" 2>/dev/null | head -n 1 || true)"
        [[ -n "$port" ]] && break
        kill -0 "$PID" 2>/dev/null || fail "cordis exited before its ready line"
        ((SECONDS < deadline)) || fail "no ready line within ${READY_TIMEOUT_S}s"
        sleep 0.1
    done
    echo "redis-suite-ci: attempt $attempt against 127.0.0.1:$port (pid $PID)" >&2
    timeout "$SUITE_TIMEOUT_S" bash "$SUITE" 127.0.0.1 "$port" core extra >"$WORK/suite-$attempt.log" 2>&1 || true
    cat "$WORK/suite-$attempt.log"
    stop_node
    PASSED="$(sed -n 's/^\([0-9][0-9]*\) passed, [0-9]* failed$/\1/p' "$WORK/suite-$attempt.log" | tail -n 1)"
}

for attempt in 1 2; do
    run_once "$attempt"
    passed="$PASSED"
    [[ -n "$passed" ]] || fail "the suite printed no 'N passed, M failed' line"
    echo "redis-suite-ci: $passed passed (floor $FLOOR)"
    if ((passed >= FLOOR)); then
        if ((passed > FLOOR)); then
            echo "redis-suite-ci: above the floor: raise $FLOOR_FILE to $passed"
        fi
        exit 0
    fi
    echo "redis-suite-ci: below the floor on attempt $attempt" >&2
done
fail "$passed passed, below the floor of $FLOOR in $FLOOR_FILE (twice)"
