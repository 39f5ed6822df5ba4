#!/usr/bin/env bash
# Drives a real cordis node with the stock Redis tools (redis-cli, redis-cli --pipe,
# redis-benchmark) and fails on any error reply or unexpected answer.
#
# Usage: scripts/compat-check.sh [path/to/cordis]   (default: target/release/cordis)
#
# Builds nothing. Starts its own node on 127.0.0.1 with --port 0, reads the port from the
# ready line, and always stops that node (by PID) on exit.
set -euo pipefail

BIN="${1:-target/release/cordis}"
HOST=127.0.0.1
READY_TIMEOUT_S=10
# Upper bounds so a hung server fails the check instead of hanging CI.
CLI_TIMEOUT_S=20
PIPE_TIMEOUT_S=120
BENCH_TIMEOUT_S=600

fail() {
    echo "compat-check: FAIL: $*" >&2
    exit 1
}

info() {
    echo "compat-check: $*"
}

[[ -x "$BIN" ]] || fail "cordis binary '$BIN' not found or not executable (build it first: cargo build --release)"
for tool in redis-cli redis-benchmark timeout; do
    command -v "$tool" >/dev/null 2>&1 || fail "'$tool' not found in PATH (install redis-tools / coreutils)"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cordis-compat.XXXXXX")"
SERVER_OUT="$WORK/cordis.stdout"
SERVER_ERR="$WORK/cordis.stderr"
PID=""

cleanup() {
    local status=$?
    set +e
    if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null
        for _ in $(seq 1 50); do
            kill -0 "$PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$PID" 2>/dev/null; then
            echo "compat-check: cordis (pid $PID) ignored SIGTERM for 5 s; sending SIGKILL" >&2
            kill -KILL "$PID" 2>/dev/null
        fi
        wait "$PID" 2>/dev/null
    fi
    if [[ $status -ne 0 ]]; then
        echo "---- cordis stdout (tail) ----" >&2
        tail -n 20 "$SERVER_OUT" >&2 2>/dev/null
        echo "---- cordis stderr (tail) ----" >&2
        tail -n 40 "$SERVER_ERR" >&2 2>/dev/null
    fi
    rm -rf "$WORK"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Start the node and wait for its ready line.
# ---------------------------------------------------------------------------
: >"$SERVER_OUT"
: >"$SERVER_ERR"
# Its own dir: snapshots it writes (SAVE) stay in WORK, and no stray dump.rdb is loaded.
"$BIN" --bind "$HOST" --port 0 --dir "$WORK" >>"$SERVER_OUT" 2>>"$SERVER_ERR" &
PID=$!
info "started $BIN (pid $PID)"

PORT=""
deadline=$((SECONDS + READY_TIMEOUT_S))
while [[ -z "$PORT" ]]; do
    PORT="$(sed -n 's/^cordis ready: listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$SERVER_OUT" | head -n 1 || true)"
    [[ -n "$PORT" ]] && break
    kill -0 "$PID" 2>/dev/null || { wait "$PID" || true; PID=""; fail "cordis exited before printing its ready line"; }
    ((SECONDS < deadline)) || fail "no ready line from cordis within ${READY_TIMEOUT_S} s"
    sleep 0.1
done
info "cordis ready on $HOST:$PORT"

cli() {
    timeout "$CLI_TIMEOUT_S" redis-cli -h "$HOST" -p "$PORT" "$@"
}

# Runs a command; its whole output must equal the expected text.
# An error reply never matches unless it is what the caller expects.
expect() {
    local expected="$1"
    shift
    local out
    out="$(cli "$@" 2>&1)" || fail "redis-cli $* exited non-zero; output: $out"
    [[ "$out" == "$expected" ]] || fail "'$*' replied '$out', expected '$expected'"
}

# Runs a command that must succeed (no error reply) and prints its output.
ok_output() {
    local out
    out="$(cli "$@" 2>&1)" || fail "redis-cli $* exited non-zero; output: $out"
    if grep -Eq '^(\(error\) )?(ERR|WRONGTYPE|NOAUTH|NOPERM|Error|Could not connect)' <<<"$out"; then
        fail "'$*' gave an error: $out"
    fi
    printf '%s\n' "$out"
}

# ---------------------------------------------------------------------------
# 1. redis-cli: basic commands with expected answers.
# ---------------------------------------------------------------------------
info "[1/3] redis-cli commands"
expect PONG ping
expect 0 dbsize
expect OK set compat:str hello
expect hello get compat:str
expect "" get compat:missing
expect OK set compat:num 10
expect 11 incr compat:num
expect 12 incr compat:num
expect 12 get compat:num
expect 1 incr compat:fresh
expect OK set compat:text abc
expect "ERR value is not an integer or out of range" incr compat:text
expect abc get compat:text

expect -1 ttl compat:str
expect -2 ttl compat:missing
expect 1 expire compat:str 100
expect 0 expire compat:missing 100
ttl="$(ok_output ttl compat:str)"
[[ "$ttl" =~ ^[0-9]+$ ]] && ((ttl >= 95 && ttl <= 100)) || fail "'ttl compat:str' replied '$ttl', expected 95..100 after EXPIRE 100"
expect hello get compat:str

expect 4 dbsize

# SCAN: follow the cursor until it returns to 0; every key must turn up.
scanned="$WORK/scan.txt"
: >"$scanned"
cursor=0
rounds=0
while :; do
    out="$(ok_output scan "$cursor" count 1000)"
    cursor="$(head -n 1 <<<"$out")"
    [[ "$cursor" =~ ^[0-9]+$ ]] || fail "'scan' returned a non-numeric cursor: $out"
    tail -n +2 <<<"$out" | sed '/^$/d' >>"$scanned"
    [[ "$cursor" == 0 ]] && break
    rounds=$((rounds + 1))
    ((rounds < 1000)) || fail "'scan' did not finish within 1000 rounds"
done
for key in compat:str compat:num compat:fresh compat:text; do
    grep -qxF "$key" "$scanned" || fail "'scan 0 count 1000' did not return key '$key' (got: $(tr '\n' ' ' <"$scanned"))"
done
[[ "$(sort -u "$scanned" | wc -l)" -eq 4 ]] || fail "scan returned unexpected keys: $(sort -u "$scanned" | tr '\n' ' ')"

info_out="$(ok_output info server)"
grep -q '^redis_version:' <<<"$(tr -d '\r' <<<"$info_out")" || fail "'info server' lacks redis_version: ; got: $info_out"
info "  $(tr -d '\r' <<<"$info_out" | grep -m1 '^redis_version:')"

expect 2 del compat:str compat:text compat:missing
expect "" get compat:str
expect 0 del compat:str
expect 2 dbsize
info "  redis-cli checks passed"

# ---------------------------------------------------------------------------
# 2. redis-cli --pipe: 10,000 RESP-encoded SETs.
# ---------------------------------------------------------------------------
info "[2/3] redis-cli --pipe with 10000 SETs"
PIPE_N=10000
pipe_in="$WORK/pipe.resp"
awk -v n="$PIPE_N" 'BEGIN {
    for (i = 0; i < n; i++) {
        k = "pipe:" i; v = "value-" i;
        printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v;
    }
}' >"$pipe_in"
pipe_out="$(timeout "$PIPE_TIMEOUT_S" redis-cli -h "$HOST" -p "$PORT" --pipe <"$pipe_in" 2>&1)" \
    || fail "redis-cli --pipe exited non-zero; output: $pipe_out"
summary="$(grep -E '^errors: [0-9]+, replies: [0-9]+' <<<"$pipe_out" | tail -n 1 || true)"
[[ "$summary" == "errors: 0, replies: $PIPE_N" ]] \
    || fail "redis-cli --pipe summary is '$summary', expected 'errors: 0, replies: $PIPE_N'; full output: $pipe_out"
info "  $summary"
expect $((PIPE_N + 2)) dbsize
expect value-0 get pipe:0
expect value-4242 get pipe:4242
expect value-$((PIPE_N - 1)) get pipe:$((PIPE_N - 1))
info "  --pipe checks passed"

# ---------------------------------------------------------------------------
# 3. redis-benchmark.
# ---------------------------------------------------------------------------
info "[3/3] redis-benchmark -q -n 100000 (the whole default suite)"
bench_raw="$WORK/bench.txt"
bench_status=0
timeout "$BENCH_TIMEOUT_S" redis-benchmark -h "$HOST" -p "$PORT" -q -n 100000 \
    >"$bench_raw" 2>&1 || bench_status=$?
# -q redraws a progress line with \r; keep only the final lines.
bench_lines="$(tr '\r' '\n' <"$bench_raw" | sed '/^[[:space:]]*$/d' | grep -v 'rps=' || true)"
if grep -Eq 'ERR|WRONGTYPE|Error|error|NOAUTH|Could not connect|Connection (refused|reset)' <<<"$bench_lines"; then
    echo "$bench_lines" >&2
    fail "redis-benchmark reported errors (see above)"
fi
((bench_status == 0)) || { echo "$bench_lines" >&2; fail "redis-benchmark exited with status $bench_status"; }
rps_lines="$(grep -E ': [0-9.]+ requests per second' <<<"$bench_lines" || true)"
# Every test of redis-benchmark 7's default run must report a rate.
for test in "PING_INLINE" "PING_MBULK" "SET" "GET" "INCR" "LPUSH" "RPUSH" "LPOP" "RPOP" \
    "SADD" "HSET" "SPOP" "ZADD" "ZPOPMIN" "LPUSH (needed to benchmark LRANGE)" \
    "LRANGE_100 (first 100 elements)" "LRANGE_300 (first 300 elements)" \
    "LRANGE_500 (first 500 elements)" "LRANGE_600 (first 600 elements)" "MSET (10 keys)"; do
    awk -v t="$test: " 'index($0, t) == 1 { found = 1 } END { exit !found }' <<<"$rps_lines" \
        || { echo "$bench_lines" >&2; fail "redis-benchmark printed no requests-per-second line for $test"; }
done
sed 's/^/  /' <<<"$rps_lines"
expect PONG ping

kill -0 "$PID" 2>/dev/null || fail "cordis died during the checks"

# Graceful shutdown: SIGTERM must end the node with status 0 within 10 s.
kill -TERM "$PID"
for _ in $(seq 1 100); do
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$PID" 2>/dev/null && fail "cordis did not exit within 10 s of SIGTERM"
exit_status=0
wait "$PID" || exit_status=$?
PID=""
((exit_status == 0)) || fail "cordis exited with status $exit_status after SIGTERM"
info "graceful shutdown on SIGTERM checked"
info "all checks passed"
