#!/usr/bin/env bash
# redis-benchmark SET throughput against one node with two peers (the
# three-region loopback example) and against a node without peers, on the
# same machine. Stops exactly the processes it started (by PID, on exit).
# Needs target/release/cordis (or CORDIS_BIN) and redis-benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${CORDIS_BIN:-target/release/cordis}
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
N=${N:-300000}
export CORDIS_PEER_SECRET=${CORDIS_PEER_SECRET:-bench-secret-$RANDOM$RANDOM}
LOGDIR=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

ready() { for _ in $(seq 100); do redis-cli -p "$1" PING >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
bench() {
    echo "-- $1"
    for P in 1 16; do
        redis-benchmark -p "$2" -t set -n "$N" -c 50 -P "$P" -r 100000 -q | tr '\r' '\n' | grep -E '^SET' | tail -1 | sed "s/^/   pipeline $P: /"
    done
}

"$BIN" --port 7101 >"$LOGDIR/alone.log" 2>&1 &
PIDS+=($!)
ready 7101
bench "one node, no peers" 7101

for i in 1 2 3; do
    "$BIN" --config "configs/region-$i.toml" --loglevel warn >"$LOGDIR/region-$i.log" 2>&1 &
    PIDS+=($!)
done
for port in 7001 7002 7003; do ready "$port"; done
for _ in $(seq 100); do redis-cli -p 7001 INFO replication | grep -q '^connected_peers:2' && break; sleep 0.1; done
bench "node streaming to two peers (same machine)" 7001
for _ in $(seq 100); do
    [ "$(redis-cli -p 7001 DEBUG DIGEST)" = "$(redis-cli -p 7002 DEBUG DIGEST)" ] && \
    [ "$(redis-cli -p 7001 DEBUG DIGEST)" = "$(redis-cli -p 7003 DEBUG DIGEST)" ] && { echo "peers converged"; break; }
    sleep 0.1
done
