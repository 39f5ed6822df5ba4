#!/usr/bin/env bash
# Memory per element of one big collection, cordis against redis-server, side by side.
#
# Usage: scripts/collection-memory.sh [path/to/cordis] [elements]   (defaults:
#        target/release/cordis, 1000000)
#
# For each type (set, hash, sorted set, list) it loads one key with N elements into a fresh
# cordis and a fresh redis-server (`--save '' --appendonly no`) through `redis-cli --pipe`, and
# prints used_memory per element above the empty server's baseline. For cordis it prints two
# figures: with the outgoing replication log as it is after the load (capped by
# `replication-log-bytes`, 16 MiB by default), and after `CONFIG SET replication-log-bytes 0`
# empties it. It stops exactly the processes it started (by PID) and removes its temp files.
set -euo pipefail

BIN="${1:-target/release/cordis}"
N="${2:-1000000}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cordis-colmem.XXXXXX")"
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in redis-server redis-cli python3; do
    command -v "$tool" >/dev/null || { echo "need $tool" >&2; exit 1; }
done
[[ -x "$BIN" ]] || { echo "no cordis binary at $BIN (cargo build --release)" >&2; exit 1; }

# RESP for N elements of one type, 1000 elements per command.
gen() {
    python3 - "$1" "$N" <<'PY'
import sys
kind, n = sys.argv[1], int(sys.argv[2])
out = sys.stdout.buffer
def cmd(args):
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        out.write(b"$%d\r\n%s\r\n" % (len(a), a))
for start in range(0, n, 1000):
    args = {"set": [b"SADD", b"big"], "hash": [b"HSET", b"big"],
            "zset": [b"ZADD", b"big"], "list": [b"RPUSH", b"big"]}[kind]
    for i in range(start, min(n, start + 1000)):
        member = b"member:%010d" % i
        if kind == "hash":
            args += [member, b"value:%07d" % i]
        elif kind == "zset":
            args += [b"%d" % i, member]
        else:
            args.append(member)
    cmd(args)
PY
}

rss_bytes() {
    awk '$1 == "VmRSS:" { print $2 * 1024 }' "/proc/$1/status"
}

used_memory() {
    redis-cli -p "$1" INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }'
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Each sets a global (R_PORT / C_PORT) rather than printing it, so the server stays a child
# of this shell and its PID lands in PIDS.
start_redis() {
    R_PORT="$(free_port)"
    (cd "$WORK" && exec redis-server --port "$R_PORT" --bind 127.0.0.1 --save '' \
        --appendonly no --daemonize no >"$WORK/redis-$R_PORT.log" 2>&1) &
    PIDS+=("$!")
    wait_ready "$R_PORT"
}

start_cordis() {
    C_PORT="$(free_port)"
    "$BIN" --bind 127.0.0.1 --port "$C_PORT" >"$WORK/cordis-$C_PORT.log" 2>&1 &
    PIDS+=("$!")
    wait_ready "$C_PORT"
}

wait_ready() {
    for _ in $(seq 100); do
        redis-cli -p "$1" PING >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server on port $1 did not start" >&2
    exit 1
}

printf '| type | elements | redis used_memory B/el | cordis used_memory B/el (log as loaded) | cordis (log emptied) | ratio (log emptied) | redis RSS B/el | cordis RSS B/el (after load) | RSS ratio |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for kind in set hash zset list; do
    gen "$kind" >"$WORK/$kind.resp"
    start_redis
    start_cordis
    r_port="$R_PORT"
    c_port="$C_PORT"
    r_pid="${PIDS[-2]}"
    c_pid="${PIDS[-1]}"
    r_base="$(used_memory "$r_port")"
    c_base="$(used_memory "$c_port")"
    r_rss_base="$(rss_bytes "$r_pid")"
    c_rss_base="$(rss_bytes "$c_pid")"
    redis-cli -p "$r_port" --pipe <"$WORK/$kind.resp" | grep -q "errors: 0" || { echo "redis load failed" >&2; exit 1; }
    redis-cli -p "$c_port" --pipe <"$WORK/$kind.resp" | grep -q "errors: 0" || { echo "cordis load failed" >&2; exit 1; }
    r_used="$(used_memory "$r_port")"
    c_used="$(used_memory "$c_port")"
    redis-cli -p "$c_port" CONFIG SET replication-log-bytes 0 >/dev/null
    c_trim="$(used_memory "$c_port")"
    r_rss="$(rss_bytes "$r_pid")"
    c_rss="$(rss_bytes "$c_pid")"
    python3 - "$kind" "$N" "$r_base" "$r_used" "$c_base" "$c_used" "$c_trim" \
        "$r_rss_base" "$r_rss" "$c_rss_base" "$c_rss" <<'PY'
import sys
kind, n, rb, ru, cb, cu, ct, rrb, rr, crb, cr = sys.argv[1], *map(int, sys.argv[2:])
r, c, t = (ru - rb) / n, (cu - cb) / n, (ct - cb) / n
rrss, crss = (rr - rrb) / n, (cr - crb) / n
print(f"| {kind} | {n} | {r:.0f} | {c:.0f} | {t:.0f} | {t / r:.2f} | {rrss:.0f} | {crss:.0f} | {crss / rrss:.2f} |")
PY
    # Stop this round's two servers (the last two started) before the next type.
    for pid in "${PIDS[@]: -2}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=("${PIDS[@]:0:${#PIDS[@]}-2}")
    rm -f "$WORK/$kind.resp"
done
