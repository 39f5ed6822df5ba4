#!/usr/bin/env bash
# Three cordis regions on loopback (configs/region-{1,2,3}.toml): different
# keys and conflicting updates on each, then the same values and the same
# DEBUG DIGEST everywhere. Stops exactly the processes it started (by PID,
# on any exit). Needs target/release/cordis (cargo build --release) and
# redis-cli.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${CORDIS_BIN:-target/release/cordis}
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "redis-cli not found" >&2; exit 1; }

export CORDIS_PEER_SECRET=${CORDIS_PEER_SECRET:-demo-secret-$RANDOM$RANDOM}
LOGDIR=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    echo "stopped ${#PIDS[@]} nodes; logs were in $LOGDIR"
}
trap cleanup EXIT

for i in 1 2 3; do
    "$BIN" --config "configs/region-$i.toml" >"$LOGDIR/region-$i.log" 2>&1 &
    PIDS+=($!)
done

cli() { redis-cli -p "$1" "${@:2}"; }
for port in 7001 7002 7003; do
    for _ in $(seq 50); do cli "$port" PING >/dev/null 2>&1 && break; sleep 0.1; done
done
# Wait until every region reports both peers connected.
for port in 7001 7002 7003; do
    for _ in $(seq 100); do
        cli "$port" INFO replication | grep -q '^connected_peers:2' && break
        sleep 0.1
    done
done

echo "== writes: different keys in each region"
cli 7001 SET greeting:eu "hello from region 1" >/dev/null
cli 7002 SET greeting:us "hello from region 2" >/dev/null
cli 7003 SET greeting:ap "hello from region 3" >/dev/null

echo "== conflicting updates: the same key and counter everywhere at once"
WRITERS=()
for port in 7001 7002 7003; do
    cli "$port" SET color "set in region on port $port" >/dev/null & WRITERS+=($!)
    cli "$port" INCRBY visits 10 >/dev/null & WRITERS+=($!)
done
for pid in "${WRITERS[@]}"; do wait "$pid"; done
cli 7001 DEL greeting:us >/dev/null   # an observed delete, replicated
cli 7002 INCRBY visits 5 >/dev/null
echo "WAIT for both peers to ack region 1's last write: $(cli 7001 WAIT 2 2000)"

echo "== converging"
converged=no
for _ in $(seq 50); do
    d1=$(cli 7001 DEBUG DIGEST); d2=$(cli 7002 DEBUG DIGEST); d3=$(cli 7003 DEBUG DIGEST)
    if [ "$d1" = "$d2" ] && [ "$d2" = "$d3" ]; then converged=yes; break; fi
    sleep 0.1
done
for port in 7001 7002 7003; do
    echo "-- region on port $port"
    echo "   color    = $(cli "$port" GET color)"
    echo "   visits   = $(cli "$port" GET visits)   (3 x 10 + 5 = 35: concurrent increments all count)"
    echo "   keys     = $(cli "$port" KEYS 'greeting:*' | sort | tr '\n' ' ')"
    echo "   digest   = $(cli "$port" DEBUG DIGEST)"
    echo "   peers    = $(cli "$port" INFO replication | grep -E '^peer[0-9]' | sed 's/,bytes.*//' | tr '\r\n' '  ')"
done
echo "converged: $converged"
[ "$converged" = yes ]
