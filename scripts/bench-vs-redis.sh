#!/usr/bin/env bash
# Side-by-side benchmark: cordis against Debian's redis-server on the same machine, same CPU
# placement, same redis-benchmark arguments, alternating runs. Prints (and writes) a markdown
# report: throughput and latency medians with cordis/redis ratios, memory per key, and (when
# cordis supports --peer) cordis with two peers against redis with two replicas.
#
# Usage: scripts/bench-vs-redis.sh [options]      (scripts/bench-vs-redis.sh --help lists them)
#
# Installs redis-server and redis-tools with apt-get if they are missing, builds the release
# binary unless --cordis is given, starts its own servers on 127.0.0.1 and stops only those
# (by PID) on exit. Progress goes to stderr; the final report goes to stdout and to --out.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOST=127.0.0.1
DEFAULT_TESTS="set,get,incr,lpush,sadd,hset,zadd"

usage() {
    cat <<EOF
Usage: scripts/bench-vs-redis.sh [options]

  --cordis PATH        cordis binary to benchmark (default: build with 'cargo build --release')
  --out FILE           markdown report (default: target/bench-vs-redis.md); raw per-round
                       results go next to it as FILE without .md plus .raw.tsv
  --quick              small runs for CI/smoke tests (n 10000 / 50000, 100000 keys for memory)
  --rounds N           alternating rounds per test and pipeline (default 3)
  --n-p1 N             requests per run at pipeline 1 (default 200000)
  --n-p16 N            requests per run at pipelines > 1 (default 2000000)
  --pipelines LIST     comma-separated pipeline depths (default 1,16)
  --tests LIST         redis-benchmark -t tests (default $DEFAULT_TESTS)
  --clients N          redis-benchmark -c (default 50)
  --keyspace N         redis-benchmark -r (default 1000000)
  --mem-keys N         keys loaded for the memory-per-key section (default 1000000)
  --pin auto|yes|no    pin servers and the load generator with taskset (default auto: pin when
                       taskset exists and there is more than one CPU)
  --server-cpus LIST   taskset CPU list for every server (default 0)
  --client-cpus LIST   taskset CPU list for redis-benchmark and redis-cli (default 1-(nproc-1))
  --cordis-args ARGS   extra cordis flags, split on spaces (e.g. "--threads 2"); not --port/--bind
  --skip-throughput    skip the throughput/latency section
  --skip-memory        skip the memory-per-key section
  --skip-peers         skip the peers-vs-replicas section
  --no-install         fail instead of running apt-get when redis tools are missing
  -h, --help           this text

Ratios are cordis/redis: above 1 means cordis has more throughput (rps) or higher latency
(p50, p99). Medians are over the rounds; in each round every test runs once against each
server, back to back, and the server that goes first alternates from round to round.
EOF
}

# ---------------------------------------------------------------------------
# Options.
# ---------------------------------------------------------------------------
CORDIS_BIN=""
OUT=""
QUICK=0
ROUNDS=3
N_P1=""
N_P16=""
PIPELINES="1,16"
TESTS="$DEFAULT_TESTS"
CLIENTS=50
KEYSPACE=1000000
MEM_KEYS=""
PIN=auto
SERVER_CPUS=0
CLIENT_CPUS=""
CORDIS_ARGS=""
RUN_THROUGHPUT=1
RUN_MEMORY=1
RUN_PEERS=1
INSTALL=1

die() {
    echo "bench-vs-redis: FAIL: $*" >&2
    exit 1
}

info() {
    echo "bench-vs-redis: $*" >&2
}

need_value() {
    [[ $# -ge 2 && -n "$2" ]] || die "option $1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --cordis) need_value "$@"; CORDIS_BIN="$2"; shift 2 ;;
        --out) need_value "$@"; OUT="$2"; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --rounds) need_value "$@"; ROUNDS="$2"; shift 2 ;;
        --n-p1) need_value "$@"; N_P1="$2"; shift 2 ;;
        --n-p16) need_value "$@"; N_P16="$2"; shift 2 ;;
        --pipelines) need_value "$@"; PIPELINES="$2"; shift 2 ;;
        --tests) need_value "$@"; TESTS="$2"; shift 2 ;;
        --clients) need_value "$@"; CLIENTS="$2"; shift 2 ;;
        --keyspace) need_value "$@"; KEYSPACE="$2"; shift 2 ;;
        --mem-keys) need_value "$@"; MEM_KEYS="$2"; shift 2 ;;
        --pin) need_value "$@"; PIN="$2"; shift 2 ;;
        --server-cpus) need_value "$@"; SERVER_CPUS="$2"; shift 2 ;;
        --client-cpus) need_value "$@"; CLIENT_CPUS="$2"; shift 2 ;;
        --cordis-args) [[ $# -ge 2 ]] || die "option $1 needs a value"; CORDIS_ARGS="$2"; shift 2 ;;
        --skip-throughput) RUN_THROUGHPUT=0; shift ;;
        --skip-memory) RUN_MEMORY=0; shift ;;
        --skip-peers) RUN_PEERS=0; shift ;;
        --no-install) INSTALL=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown option '$1'" ;;
    esac
done

if [[ $QUICK -eq 1 ]]; then
    : "${N_P1:=10000}" "${N_P16:=50000}" "${MEM_KEYS:=100000}"
else
    : "${N_P1:=200000}" "${N_P16:=2000000}" "${MEM_KEYS:=1000000}"
fi
: "${OUT:=$ROOT/target/bench-vs-redis.md}"
RAW="${OUT%.md}.raw.tsv"

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
for pair in "rounds:$ROUNDS" "n-p1:$N_P1" "n-p16:$N_P16" "clients:$CLIENTS" "keyspace:$KEYSPACE" "mem-keys:$MEM_KEYS"; do
    value="${pair#*:}"
    if ! is_uint "$value" || ((10#$value == 0)); then
        die "--${pair%%:*} must be a positive integer, got '$value'"
    fi
done
[[ "$PIPELINES" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--pipelines must be a comma-separated list of integers"
[[ "$TESTS" =~ ^[a-z0-9_]+(,[a-z0-9_]+)*$ ]] || die "--tests must be a comma-separated list of redis-benchmark test names"
[[ "$PIN" == auto || "$PIN" == yes || "$PIN" == no ]] || die "--pin must be auto, yes or no"
((ROUNDS >= 3)) || info "warning: medians of fewer than 3 rounds are fragile"
IFS=, read -r -a PIPELINE_LIST <<<"$PIPELINES"
IFS=, read -r -a TEST_LIST <<<"$TESTS"
read -r -a CORDIS_EXTRA <<<"$CORDIS_ARGS"
for arg in ${CORDIS_EXTRA[@]+"${CORDIS_EXTRA[@]}"}; do
    [[ "$arg" == --port* || "$arg" == --bind* ]] && die "--cordis-args must not set --port or --bind (the script chooses them)"
done

# Upper bounds so a hung server fails the run instead of hanging it.
CLI_TIMEOUT_S=30
READY_TIMEOUT_S=15
BENCH_TIMEOUT_S=900
PIPE_TIMEOUT_S=900
SYNC_TIMEOUT_S=60

# ---------------------------------------------------------------------------
# Tools: redis-server / redis-tools from Debian, the cordis binary.
# ---------------------------------------------------------------------------
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

missing=()
for tool in redis-server redis-cli redis-benchmark; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    [[ $INSTALL -eq 1 ]] || die "missing ${missing[*]} (install Debian's redis-server and redis-tools, or drop --no-install)"
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them with"
    info "installing redis-server and redis-tools with apt-get (missing: ${missing[*]})"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools >&2
    for tool in redis-server redis-cli redis-benchmark; do
        command -v "$tool" >/dev/null 2>&1 || die "'$tool' still not in PATH after apt-get install"
    done
fi
for tool in timeout awk sort; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found in PATH (coreutils / awk)"
done

if [[ -z "$CORDIS_BIN" ]]; then
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust, or pass --cordis PATH"
    info "building cordis (cargo build --release)"
    (cd "$ROOT" && cargo build --release >&2)
    target_dir="${CARGO_TARGET_DIR:-target}"
    [[ "$target_dir" == /* ]] || target_dir="$ROOT/$target_dir"
    CORDIS_BIN="$target_dir/release/cordis"
fi
[[ -x "$CORDIS_BIN" ]] || die "cordis binary '$CORDIS_BIN' not found or not executable"
CORDIS_HELP="$("$CORDIS_BIN" --help 2>&1)" || die "'$CORDIS_BIN --help' failed: $CORDIS_HELP"

# ---------------------------------------------------------------------------
# CPU placement.
# ---------------------------------------------------------------------------
NPROC="$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)"
PIN_SERVER=()
PIN_CLIENT=()
PLACEMENT="not pinned (servers and redis-benchmark share all $NPROC CPUs)"
if [[ "$PIN" != no ]]; then
    if command -v taskset >/dev/null 2>&1 && ((NPROC > 1)); then
        if [[ -z "$CLIENT_CPUS" ]]; then
            CLIENT_CPUS=1
            ((NPROC > 2)) && CLIENT_CPUS="1-$((NPROC - 1))"
        fi
        taskset -c "$SERVER_CPUS" true 2>/dev/null || die "taskset cannot use --server-cpus '$SERVER_CPUS'"
        taskset -c "$CLIENT_CPUS" true 2>/dev/null || die "taskset cannot use --client-cpus '$CLIENT_CPUS'"
        PIN_SERVER=(taskset -c "$SERVER_CPUS")
        PIN_CLIENT=(taskset -c "$CLIENT_CPUS")
        PLACEMENT="every server on CPU $SERVER_CPUS, redis-benchmark/redis-cli on CPU $CLIENT_CPUS (taskset)"
    elif [[ "$PIN" == yes ]]; then
        die "--pin yes needs taskset and more than one CPU (nproc: $NPROC)"
    fi
fi

# ---------------------------------------------------------------------------
# Processes this script started; only these are ever stopped.
# ---------------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cordis-bench.XXXXXX")"
PIDS=()
PID_NAMES=()
PID_LOGS=()

stop_pid() {
    local pid="$1" i
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            info "pid $pid ignored SIGTERM for 10 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    for i in "${!PIDS[@]}"; do
        if [[ "${PIDS[$i]}" == "$pid" ]]; then PIDS[i]=""; fi
    done
    return 0
}

stop_all() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        if [[ -n "${PIDS[$i]}" ]]; then stop_pid "${PIDS[$i]}"; fi
    done
    return 0
}

cleanup() {
    local status=$?
    set +e
    if [[ $status -ne 0 ]]; then
        local i
        for i in "${!PID_NAMES[@]}"; do
            echo "---- ${PID_NAMES[$i]} output (tail) ----" >&2
            tail -n 15 "${PID_LOGS[$i]}" >&2 2>/dev/null
        done
    fi
    stop_all
    rm -rf "$WORK"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Sets STARTED_PID. Output (stdout and stderr) goes to $WORK/<name>.log.
spawn() {
    local name="$1"
    shift
    local log="$WORK/$name.log"
    : >"$log"
    ${PIN_SERVER[@]+"${PIN_SERVER[@]}"} "$@" >>"$log" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    PID_NAMES+=("$name")
    PID_LOGS+=("$log")
}

# Prints the reply (or redis-cli's complaint); never fails, so callers judge the text.
cli() {
    local port="$1"
    shift
    timeout "$CLI_TIMEOUT_S" redis-cli -h "$HOST" -p "$port" "$@" 2>&1 | tr -d '\r' || true
}

info_field() { # port section field
    cli "$1" INFO "$2" | sed -n "s/^$3://p" | head -n 1
}

is_error_reply() {
    [[ "$1" =~ ^(ERR|WRONGTYPE|NOAUTH|NOPERM|READONLY|LOADING|BUSY|MISCONF|EXECABORT|Could\ not\ connect|Error) ]]
}

now_s() {
    if [[ -n "${EPOCHREALTIME:-}" ]]; then echo "${EPOCHREALTIME/,/.}"; else date +%s.%N; fi
}

# A TCP port on $HOST that no socket uses right now, below the kernel's ephemeral range (whose
# ports outgoing connections take at any moment, so a listener could not bind them).
free_port() {
    local low=32768 port tries
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    ((low > 12000)) || low=32768
    for ((tries = 0; tries < 200; tries++)); do
        port=$((10000 + RANDOM % (low - 10000)))
        if command -v ss >/dev/null 2>&1; then
            [[ -z "$(ss -Htan "( sport = :$port )" 2>/dev/null)" ]] || continue
        fi
        if ! (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "no free TCP port found"
}

# start_cordis NAME [extra flags...]: sets STARTED_PID and STARTED_PORT.
start_cordis() {
    local name="$1"
    shift
    spawn "$name" "$CORDIS_BIN" --bind "$HOST" --port 0 ${CORDIS_EXTRA[@]+"${CORDIS_EXTRA[@]}"} "$@"
    local log="$WORK/$name.log" deadline=$((SECONDS + READY_TIMEOUT_S))
    STARTED_PORT=""
    while [[ -z "$STARTED_PORT" ]]; do
        STARTED_PORT="$(sed -n 's/^cordis ready: listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$log" | head -n 1)"
        [[ -n "$STARTED_PORT" ]] && break
        kill -0 "$STARTED_PID" 2>/dev/null || die "$name exited before printing its ready line"
        ((SECONDS < deadline)) || die "no ready line from $name within ${READY_TIMEOUT_S} s"
        sleep 0.1
    done
    info "$name ready on $HOST:$STARTED_PORT (pid $STARTED_PID)"
}

# start_redis NAME [extra flags...]: sets STARTED_PID and STARTED_PORT. Runs in its own empty
# directory so no dump.rdb from elsewhere is loaded. Retries on another port if the one chosen
# was taken between the check and the bind.
start_redis() {
    local name="$1"
    shift
    local port dir="$WORK/$name.dir" attempt deadline
    mkdir -p "$dir"
    for attempt in 1 2 3 4 5; do
        port="$(free_port)"
        spawn "$name" redis-server --port "$port" --bind "$HOST" --save '' --appendonly no \
            --daemonize no --dir "$dir" "$@"
        deadline=$((SECONDS + READY_TIMEOUT_S))
        until [[ "$(cli "$port" PING)" == PONG ]]; do
            kill -0 "$STARTED_PID" 2>/dev/null || break
            ((SECONDS < deadline)) || die "$name did not answer PING within ${READY_TIMEOUT_S} s"
            sleep 0.1
        done
        if kill -0 "$STARTED_PID" 2>/dev/null; then
            break
        fi
        stop_pid "$STARTED_PID"
        grep -q 'Address already in use' "$WORK/$name.log" || die "$name exited during startup"
        info "$name: port $port was taken (attempt $attempt); trying another"
        ((attempt < 5)) || die "$name could not bind a port in 5 attempts"
    done
    [[ "$(info_field "$port" server process_id)" == "$STARTED_PID" ]] \
        || die "the server on port $port is not the $name this script started"
    STARTED_PORT="$port"
    info "$name ready on $HOST:$STARTED_PORT (pid $STARTED_PID)"
}

expect_empty() { # name port
    local n
    n="$(cli "$2" DBSIZE)"
    [[ "$n" == 0 ]] || die "$1 is not empty at start (DBSIZE: $n)"
}

flushall() { # port...
    local port out
    for port in "$@"; do
        out="$(cli "$port" FLUSHALL)"
        [[ "$out" == OK ]] || die "FLUSHALL on port $port replied '$out'"
    done
}

alive() { # pid port
    kill -0 "$1" 2>/dev/null && [[ "$(cli "$2" PING)" == PONG ]]
}

# ---------------------------------------------------------------------------
# Running redis-benchmark.
# ---------------------------------------------------------------------------
RAW_TMP="$WORK/raw.tsv"  # section server pipeline test round rps avg min p50 p95 p99 max
NA_TMP="$WORK/na.tsv"    # section server pipeline TEST round reason
: >"$RAW_TMP"
: >"$NA_TMP"

upper() { tr '[:lower:]' '[:upper:]' <<<"$1"; }

# A command of the same kind as redis-benchmark's test, to find unsupported commands up front
# (redis-benchmark 7 exits at the first error reply). Unknown tests are not probed.
probe_args() {
    case "$1" in
        set) PROBE=(SET bench:probe:string x) ;;
        get) PROBE=(GET bench:probe:string) ;;
        incr) PROBE=(INCR bench:probe:counter) ;;
        lpush | rpush) PROBE=("$(upper "$1")" bench:probe:list x) ;;
        lpop | rpop) PROBE=("$(upper "$1")" bench:probe:list) ;;
        lrange*) PROBE=(LRANGE bench:probe:list 0 9) ;;
        sadd) PROBE=(SADD bench:probe:set x) ;;
        spop) PROBE=(SPOP bench:probe:set) ;;
        hset) PROBE=(HSET bench:probe:hash field x) ;;
        zadd) PROBE=(ZADD bench:probe:zset 1 x) ;;
        zpopmin) PROBE=(ZPOPMIN bench:probe:zset) ;;
        mset) PROBE=(MSET bench:probe:m1 x bench:probe:m2 y) ;;
        *) PROBE=() ;;
    esac
    return 0
}

# Prints the error reply the probe got, or nothing if the command is supported.
probe() { # port test
    local out
    probe_args "$2"
    [[ ${#PROBE[@]} -gt 0 ]] || return 0
    out="$(cli "$1" "${PROBE[@]}")"
    if is_error_reply "$out"; then
        head -n 1 <<<"$out" | cut -c 1-100 | sed 's/[[:space:]]*$//'
    fi
    cli "$1" DEL bench:probe:string bench:probe:counter bench:probe:list bench:probe:set \
        bench:probe:hash bench:probe:zset bench:probe:m1 bench:probe:m2 >/dev/null
}

requests_for() { # pipeline
    if (($1 > 1)); then echo "$N_P16"; else echo "$N_P1"; fi
}

# bench SECTION SERVER PORT PID PIPELINE TEST ROUND: one redis-benchmark run of one test;
# appends its CSV rows to RAW_TMP, or a reason to NA_TMP. Dies if the server died.
bench() {
    local section="$1" server="$2" port="$3" pid="$4" pipeline="$5" test="$6" round="$7"
    local n csv="$WORK/run.csv" err="$WORK/run.err" status=0 rows errline
    n="$(requests_for "$pipeline")"
    timeout "$BENCH_TIMEOUT_S" ${PIN_CLIENT[@]+"${PIN_CLIENT[@]}"} redis-benchmark -h "$HOST" -p "$port" \
        -c "$CLIENTS" -r "$KEYSPACE" -n "$n" -P "$pipeline" -t "$test" --csv >"$csv" 2>"$err" || status=$?
    rows="$(tr -d '\r' <"$csv" | grep -E '^"[^"]+","[0-9.]+",' || true)"
    errline="$(cat "$csv" "$err" | tr -d '\r' | grep -m 1 -E 'Error from server|ERR|WRONGTYPE' || true)"
    if [[ $status -eq 0 && -n "$rows" && -z "$errline" ]]; then
        awk -F'","' -v OFS='\t' -v s="$section" -v v="$server" -v p="$pipeline" -v r="$round" '{
            sub(/^"/, "", $1);
            sub(/"$/, "", $NF);
            print s, v, p, $1, r, $2, $3, $4, $5, $6, $7, $8
        }' <<<"$rows" >>"$RAW_TMP"
        info "  $section round $round P$pipeline $(upper "$test") $server: $(awk -F'","' '{print $2}' <<<"$rows" | head -n 1) rps"
        return 0
    fi
    alive "$pid" "$port" || die "$server died during redis-benchmark -t $test -P $pipeline (status $status)"
    local reason
    if [[ -n "$errline" ]]; then
        reason="error reply: ${errline#Error from server: }"
    elif [[ $status -eq 0 && -z "$rows" ]]; then
        reason="redis-benchmark printed no result (unknown test name?)"
    elif [[ $status -eq 124 ]]; then
        reason="redis-benchmark timed out after ${BENCH_TIMEOUT_S} s"
    else
        reason="redis-benchmark exited with status $status: $(tr -d '\r' <"$err" | tail -n 1)"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$section" "$server" "$pipeline" "$(upper "$test")" "$round" \
        "$(cut -c 1-100 <<<"$reason" | sed 's/[[:space:]]*$//')" >>"$NA_TMP"
    info "  $section round $round P$pipeline $(upper "$test") $server: n/a ($reason)"
}

is_unsupported() { # section server TEST
    awk -F'\t' -v s="$1" -v v="$2" -v t="$3" \
        '$1 == s && $2 == v && $4 == t && $6 ~ /^unsupported/ { found = 1 } END { exit !found }' "$NA_TMP"
}

# Records n/a for every round of a test that a server does not support.
mark_unsupported() { # section server test reason
    local p r
    for p in "${PIPELINE_LIST[@]}"; do
        for ((r = 1; r <= ROUNDS; r++)); do
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$p" "$(upper "$3")" "$r" "unsupported: $4" >>"$NA_TMP"
        done
    done
    info "  $2 does not support '$3' ($4): n/a"
}

# ---------------------------------------------------------------------------
# Report helpers.
# ---------------------------------------------------------------------------
median() { # reads numbers on stdin
    sort -g | awk '{ a[NR] = $1 } END {
        if (NR == 0) { print "n/a"; exit }
        if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2
    }'
}

# stat SECTION SERVER PIPELINE TEST COLUMN: the median of a column (6 rps, 9 p50, 11 p99).
stat() {
    awk -F'\t' -v s="$1" -v v="$2" -v p="$3" -v t="$4" -v c="$5" \
        '$1 == s && $2 == v && $3 == p && $4 == t { print $c }' "$RAW_TMP" | median
}

count_rounds() { # section server pipeline test
    awk -F'\t' -v s="$1" -v v="$2" -v p="$3" -v t="$4" \
        '$1 == s && $2 == v && $3 == p && $4 == t { n++ } END { print n + 0 }' "$RAW_TMP"
}

na_reason() { # section server pipeline test
    awk -F'\t' -v s="$1" -v v="$2" -v p="$3" -v t="$4" \
        '$1 == s && $2 == v && $3 == p && $4 == t { print $6; exit }' "$NA_TMP"
}

ratio() { # a b -> a/b with 2 decimals, or n/a
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2f\n", a / b; else print "n/a"
    }'
}

fmt_rps() { # rounds to an integer; marks medians over fewer than all rounds
    local value="$1" rounds="$2"
    if [[ "$value" == n/a ]]; then echo n/a; return; fi
    local out
    out="$(awk -v x="$value" 'BEGIN { printf "%d", x + 0.5 }')"
    ((rounds < ROUNDS)) && out="$out ($rounds/$ROUNDS rounds)"
    echo "$out"
}

# table SECTION SERVER_A SERVER_B LABEL_A LABEL_B: the markdown rows comparing B (cordis) to A.
table() {
    local s="$1" a="$2" b="$3" la="$4" lb="$5" p t
    echo "| test | pipeline | $la rps | $lb rps | rps ratio | $la p50 ms | $lb p50 ms | p50 ratio | $la p99 ms | $lb p99 ms | p99 ratio |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    # Rows in the order they were first measured (or marked n/a).
    cut -f 1,3,4 "$RAW_TMP" "$NA_TMP" | awk -F'\t' -v s="$s" '$1 == s && !seen[$2 FS $3]++ { print $2 "\t" $3 }' |
        while IFS=$'\t' read -r p t; do
            local ra rb pa pb qa qb na nb
            ra="$(stat "$s" "$a" "$p" "$t" 6)"
            rb="$(stat "$s" "$b" "$p" "$t" 6)"
            pa="$(stat "$s" "$a" "$p" "$t" 9)"
            pb="$(stat "$s" "$b" "$p" "$t" 9)"
            qa="$(stat "$s" "$a" "$p" "$t" 11)"
            qb="$(stat "$s" "$b" "$p" "$t" 11)"
            na="$(count_rounds "$s" "$a" "$p" "$t")"
            nb="$(count_rounds "$s" "$b" "$p" "$t")"
            echo "| $t | $p | $(fmt_rps "$ra" "$na") | $(fmt_rps "$rb" "$nb") | $(ratio "$rb" "$ra") | $pa | $pb | $(ratio "$pb" "$pa") | $qa | $qb | $(ratio "$qb" "$qa") |"
        done
    local notes
    notes="$(awk -F'\t' -v s="$s" '$1 == s && !seen[$2 FS $4]++ { print "- " $2 " " $4 ": n/a, " $6 }' "$NA_TMP")"
    if [[ -n "$notes" ]]; then
        echo
        echo "$notes"
    fi
}

REPORT="$WORK/report.md"
section_title() {
    printf '\n## %s\n\n' "$1" >>"$REPORT"
    info "== $1 =="
}

# ---------------------------------------------------------------------------
# Header: the machine and the software.
# ---------------------------------------------------------------------------
cpu_model="$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo 2>/dev/null | head -n 1)"
mem_total="$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)"
cordis_rev="$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
rustc_version="$(rustc --version 2>/dev/null || echo "rustc not in PATH")"
{
    echo "# cordis vs redis-server, side by side"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- machine: ${NPROC} CPUs (nproc), ${cpu_model:-unknown CPU model}, ${mem_total:-unknown memory}, $(uname -sr)"
    load_start="$(cut -d ' ' -f 1-3 /proc/loadavg 2>/dev/null || echo unknown)"
    echo "- load average at start: $load_start"
    if awk -v l="${load_start%% *}" -v n="$NPROC" 'BEGIN { exit !(l ~ /^[0-9.]+$/ && l > n / 4) }'; then
        echo "- **warning: the machine was busy before the run started (load ${load_start%% *} on $NPROC CPUs); expect noisy figures**"
    fi
    echo "- redis: $(redis-server --version), $(redis-benchmark --version 2>/dev/null | head -n 1)"
    echo "- cordis: \`$CORDIS_BIN\` at $cordis_rev (source tree), ${rustc_version}, extra flags: \`${CORDIS_ARGS:-none}\`"
    echo "- placement: $PLACEMENT"
    echo "- sizes: $ROUNDS rounds, n $N_P1 at pipeline 1 / $N_P16 deeper, $MEM_KEYS keys for memory$([[ $QUICK -eq 1 ]] && echo " (--quick: a smoke test, the numbers are rough)")"
} >"$REPORT"
info "cordis: $CORDIS_BIN; placement: $PLACEMENT"

# ---------------------------------------------------------------------------
# 1. Throughput and latency.
# ---------------------------------------------------------------------------
# run_rounds SECTION TESTS NAME_A PORT_A PID_A NAME_B PORT_B PID_B [AFTER_SET_HOOK]: alternating
# rounds; the hook (if any) runs after each SET run with the server name and port.
run_rounds() {
    local section="$1" tests="$2" na="$3" porta="$4" pida="$5" nb="$6" portb="$7" pidb="$8" hook="${9:-}"
    local r p t first
    local -a list order
    IFS=, read -r -a list <<<"$tests"
    for ((r = 1; r <= ROUNDS; r++)); do
        if ((r % 2)); then order=("$na|$porta|$pida" "$nb|$portb|$pidb"); else order=("$nb|$portb|$pidb" "$na|$porta|$pida"); fi
        for p in "${PIPELINE_LIST[@]}"; do
            for t in "${list[@]}"; do
                for first in "${order[@]}"; do
                    local name="${first%%|*}" rest="${first#*|}"
                    local port="${rest%%|*}" pid="${rest#*|}"
                    is_unsupported "$section" "$name" "$(upper "$t")" && continue
                    bench "$section" "$name" "$port" "$pid" "$p" "$t" "$r"
                    if [[ -n "$hook" && "$t" == set ]]; then
                        "$hook" "$section" "$name" "$port" "$r" "$p"
                    fi
                done
            done
        done
        flushall "$porta" "$portb"
    done
}

if [[ $RUN_THROUGHPUT -eq 1 ]]; then
    section_title "Throughput and latency"
    start_redis redis
    REDIS_PID=$STARTED_PID REDIS_PORT=$STARTED_PORT
    start_cordis cordis
    CORDIS_PID=$STARTED_PID CORDIS_PORT=$STARTED_PORT
    expect_empty redis "$REDIS_PORT"
    expect_empty cordis "$CORDIS_PORT"
    for t in "${TEST_LIST[@]}"; do
        for side in redis cordis; do
            port=$REDIS_PORT
            [[ $side == cordis ]] && port=$CORDIS_PORT
            why="$(probe "$port" "$t")"
            [[ -z "$why" ]] || mark_unsupported throughput "$side" "$t" "$why"
        done
    done
    flushall "$REDIS_PORT" "$CORDIS_PORT"
    run_rounds throughput "$TESTS" redis "$REDIS_PORT" "$REDIS_PID" cordis "$CORDIS_PORT" "$CORDIS_PID"
    {
        echo "Medians of $ROUNDS round(s) of \`redis-benchmark -h $HOST -p PORT -c $CLIENTS -r $KEYSPACE -n N -P P -t TEST --csv\`"
        echo "(N = $N_P1 at pipeline 1, $N_P16 deeper), one test per run, FLUSHALL on both after every round."
        echo "rps ratio = cordis/redis (above 1: cordis faster); latency ratios = cordis/redis (above 1: cordis slower)."
        echo
        table throughput redis cordis redis cordis
    } >>"$REPORT"
    stop_pid "$CORDIS_PID"
    stop_pid "$REDIS_PID"
fi

# ---------------------------------------------------------------------------
# 2. Memory per key: fresh servers, empty baseline, then MEM_KEYS SETs through redis-cli --pipe.
# ---------------------------------------------------------------------------
rss_of() { # pid port: VmRSS in bytes from /proc, else INFO used_memory_rss
    local kb
    kb="$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)"
    if [[ -n "$kb" ]]; then echo $((kb * 1024)); else info_field "$2" memory used_memory_rss; fi
}

per_key() { # before after keys
    awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f\n", (b - a) / n }'
}

mib() { awk -v x="$1" 'BEGIN { printf "%.1f MiB\n", x / 1048576 }'; }

if [[ $RUN_MEMORY -eq 1 ]]; then
    section_title "Memory per key"
    resp="$WORK/load.resp"
    info "writing $MEM_KEYS SET commands (key:%010d, 16-byte values) to $resp"
    awk -v n="$MEM_KEYS" 'BEGIN {
        for (i = 1; i <= n; i++)
            printf "*3\r\n$3\r\nSET\r\n$14\r\nkey:%010d\r\n$16\r\nv%015d\r\n", i, i
    }' >"$resp"
    start_redis redis-mem
    REDIS_PID=$STARTED_PID REDIS_PORT=$STARTED_PORT
    start_cordis cordis-mem
    CORDIS_PID=$STARTED_PID CORDIS_PORT=$STARTED_PORT
    expect_empty redis "$REDIS_PORT"
    expect_empty cordis "$CORDIS_PORT"
    sleep 1
    declare -A mem_before rss_before mem_after rss_after
    for side in redis cordis; do
        if [[ $side == redis ]]; then pid=$REDIS_PID port=$REDIS_PORT; else pid=$CORDIS_PID port=$CORDIS_PORT; fi
        mem_before[$side]="$(info_field "$port" memory used_memory)"
        rss_before[$side]="$(rss_of "$pid" "$port")"
        info "loading $MEM_KEYS keys into $side"
        out="$(timeout "$PIPE_TIMEOUT_S" ${PIN_CLIENT[@]+"${PIN_CLIENT[@]}"} redis-cli -h "$HOST" -p "$port" --pipe <"$resp" 2>&1)" \
            || die "redis-cli --pipe into $side failed: $(tail -n 3 <<<"$out")"
        summary="$(grep -E '^errors: [0-9]+, replies: [0-9]+' <<<"$out" | tail -n 1 || true)"
        [[ "$summary" == "errors: 0, replies: $MEM_KEYS" ]] \
            || die "redis-cli --pipe into $side: '$summary', expected 'errors: 0, replies: $MEM_KEYS'"
        n="$(cli "$port" DBSIZE)"
        [[ "$n" == "$MEM_KEYS" ]] || die "$side holds $n keys after loading $MEM_KEYS"
    done
    sleep 1
    for side in redis cordis; do
        if [[ $side == redis ]]; then pid=$REDIS_PID port=$REDIS_PORT; else pid=$CORDIS_PID port=$CORDIS_PORT; fi
        mem_after[$side]="$(info_field "$port" memory used_memory)"
        [[ $side == cordis ]] && log_bytes="$(info_field "$port" memory replication_log_bytes)"
        rss_after[$side]="$(rss_of "$pid" "$port")"
        for v in "${mem_before[$side]}" "${mem_after[$side]}" "${rss_before[$side]}" "${rss_after[$side]}"; do
            is_uint "$v" || die "could not read memory figures from $side (got '$v')"
        done
    done
    # The same cordis figure without its outgoing delta log: empty the log by lowering its cap to
    # 0 for a moment (used_memory only; freed memory need not leave the RSS).
    mem_nolog=""
    log_cap="$(cli "$CORDIS_PORT" CONFIG GET replication-log-bytes | sed -n 2p)"
    if is_uint "$log_cap" && [[ "$(cli "$CORDIS_PORT" CONFIG SET replication-log-bytes 0)" == OK ]]; then
        mem_nolog="$(info_field "$CORDIS_PORT" memory used_memory)"
        [[ "$(cli "$CORDIS_PORT" CONFIG SET replication-log-bytes "$log_cap")" == OK ]] \
            || die "could not restore cordis's replication-log-bytes to $log_cap"
        is_uint "$mem_nolog" && mem_nolog="$(per_key "${mem_before[cordis]}" "$mem_nolog" "$MEM_KEYS")"
    fi
    mem_redis="$(per_key "${mem_before[redis]}" "${mem_after[redis]}" "$MEM_KEYS")"
    mem_cordis="$(per_key "${mem_before[cordis]}" "${mem_after[cordis]}" "$MEM_KEYS")"
    rss_redis="$(per_key "${rss_before[redis]}" "${rss_after[redis]}" "$MEM_KEYS")"
    rss_cordis="$(per_key "${rss_before[cordis]}" "${rss_after[cordis]}" "$MEM_KEYS")"
    {
        echo "Fresh servers; $MEM_KEYS \`SET key:%010d v%015d\` (14-byte keys, 16-byte values) through"
        echo "\`redis-cli --pipe\`; per key = (after − empty baseline) / keys. used_memory is each server's"
        echo "own allocator count (\`INFO memory\`), RSS is VmRSS from /proc. cordis's figure includes its"
        echo "outgoing delta log (capped by \`replication-log-bytes\`)."
        echo
        echo "| server | used_memory empty → loaded | used_memory per key | RSS empty → loaded | RSS per key |"
        echo "|---|---|---|---|---|"
        for side in redis cordis; do
            if [[ $side == redis ]]; then m=$mem_redis r=$rss_redis; else m=$mem_cordis r=$rss_cordis; fi
            echo "| $side | $(mib "${mem_before[$side]}") → $(mib "${mem_after[$side]}") | $m B | $(mib "${rss_before[$side]}") → $(mib "${rss_after[$side]}") | $r B |"
        done
        echo "| cordis/redis | | $(ratio "$mem_cordis" "$mem_redis") | | $(ratio "$rss_cordis" "$rss_redis") |"
        if is_uint "${log_bytes:-}"; then
            echo
            echo "cordis's outgoing delta log held $(mib "$log_bytes") by its own estimate (\`replication_log_bytes\`) after loading."
        fi
        if [[ -n "$mem_nolog" ]]; then
            echo "With the log emptied (\`CONFIG SET replication-log-bytes 0\`, then restored), cordis's used_memory"
            echo "is $mem_nolog B per key ($(ratio "$mem_nolog" "$mem_redis") × redis). The log is capped by bytes, so with few"
            echo "keys (e.g. --quick) it holds a batch for every key loaded and dominates the per-key figure."
        fi
    } >>"$REPORT"
    info "bytes/key used_memory: redis $mem_redis, cordis $mem_cordis; RSS: redis $rss_redis, cordis $rss_cordis"
    stop_pid "$CORDIS_PID"
    stop_pid "$REDIS_PID"
fi

# ---------------------------------------------------------------------------
# 3. cordis with two peers vs redis with two replicas.
# ---------------------------------------------------------------------------
PEERS_TITLE="cordis with two peers vs redis with two replicas"
SYNC_TMP="$WORK/sync.tsv" # server round pipeline seconds|timeout
: >"$SYNC_TMP"

# After a SET run against a leader: seconds until every follower's DBSIZE equals the leader's.
follower_ports_redis=()
follower_ports_cordis=()
measure_sync() { # section server port round pipeline
    local server="$2" port="$3" round="$4" pipeline="$5" start want f ok elapsed
    local -a followers
    if [[ $server == redis ]]; then followers=("${follower_ports_redis[@]}"); else followers=("${follower_ports_cordis[@]}"); fi
    start="$(now_s)"
    want="$(cli "$port" DBSIZE)"
    while :; do
        ok=1
        for f in "${followers[@]}"; do
            [[ "$(cli "$f" DBSIZE)" == "$want" ]] || { ok=0; break; }
        done
        elapsed="$(awk -v a="$start" -v b="$(now_s)" 'BEGIN { printf "%.2f", b - a }')"
        if ((ok)); then break; fi
        if awk -v e="$elapsed" -v t="$SYNC_TIMEOUT_S" 'BEGIN { exit !(e > t) }'; then
            elapsed="timeout"
            break
        fi
        sleep 0.05
    done
    printf '%s\t%s\t%s\t%s\n' "$server" "$round" "$pipeline" "$elapsed" >>"$SYNC_TMP"
    info "  followers of $server caught up ($want keys): ${elapsed} s"
}

# Waits until a write on the leader is readable on every follower.
replicates() { # leader_port follower_ports...
    local leader="$1" token f deadline=$((SECONDS + 30))
    shift
    token="probe-$RANDOM$RANDOM"
    [[ "$(cli "$leader" SET bench:probe:replication "$token")" == OK ]] || return 1
    for f in "$@"; do
        until [[ "$(cli "$f" GET bench:probe:replication)" == "$token" ]]; do
            ((SECONDS < deadline)) || return 1
            sleep 0.1
        done
    done
    cli "$leader" DEL bench:probe:replication >/dev/null
}

if [[ $RUN_PEERS -eq 1 ]]; then
    section_title "$PEERS_TITLE"
    if ! grep -q -- --peer <<<"$CORDIS_HELP"; then
        msg="skipped: this cordis build has no --peer flag (peer replication is not implemented yet)"
        echo "$msg." >>"$REPORT"
        info "$msg"
    else
        start_redis redis-primary
        RP_PID=$STARTED_PID RP_PORT=$STARTED_PORT
        start_redis redis-replica-1 --replicaof "$HOST" "$RP_PORT"
        follower_ports_redis+=("$STARTED_PORT")
        start_redis redis-replica-2 --replicaof "$HOST" "$RP_PORT"
        follower_ports_redis+=("$STARTED_PORT")

        secret="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
        pp=("$(free_port)" "$(free_port)" "$(free_port)")
        cordis_pids=() cordis_ports=()
        for i in 0 1 2; do
            peer_flags=()
            for j in 0 1 2; do
                ((i == j)) || peer_flags+=(--peer "$HOST:${pp[$j]}")
            done
            start_cordis "cordis-peer-$((i + 1))" --peer-port "${pp[$i]}" --peer-secret "$secret" "${peer_flags[@]}"
            cordis_pids+=("$STARTED_PID")
            cordis_ports+=("$STARTED_PORT")
        done
        follower_ports_cordis=("${cordis_ports[1]}" "${cordis_ports[2]}")
        for port in "$RP_PORT" "${cordis_ports[0]}"; do
            expect_empty "server on port $port" "$port"
        done
        if ! replicates "$RP_PORT" "${follower_ports_redis[@]}"; then
            msg="skipped: redis replicas did not receive a probe write within 30 s"
            echo "$msg." >>"$REPORT"
            info "$msg"
        elif ! replicates "${cordis_ports[0]}" "${follower_ports_cordis[@]}"; then
            msg="skipped: cordis peers did not receive a probe write within 30 s (--peer flags accepted, but no replication seen)"
            echo "$msg." >>"$REPORT"
            info "$msg"
        else
            run_rounds peers set,get redis "$RP_PORT" "$RP_PID" cordis "${cordis_ports[0]}" "${cordis_pids[0]}" measure_sync
            {
                echo "redis-server primary with two \`--replicaof\` replicas against three cordis nodes in a full"
                echo "mesh (\`--peer-port\`, \`--peer-secret\`, \`--peer\` for each other node). Medians of $ROUNDS"
                echo "round(s) of \`redis-benchmark -c $CLIENTS -r $KEYSPACE -n N -P P -t TEST --csv\` (N = $N_P1 at"
                echo "pipeline 1, $N_P16 deeper) against the primary / the first cordis node; every server on the"
                echo "server CPUs."
                echo
                table peers redis cordis "redis+2 replicas" "cordis+2 peers"
                echo
                echo "Seconds from the end of each SET run until both followers hold as many keys as the node"
                echo "written to (DBSIZE polled every 50 ms), per round and pipeline:"
                echo
                echo "| server | catch-up seconds |"
                echo "|---|---|"
                for side in redis cordis; do
                    echo "| $side | $(awk -F'\t' -v s="$side" '$1 == s { printf "%s%s (r%s P%s)", sep, $4, $2, $3; sep = ", " }' "$SYNC_TMP") |"
                done
            } >>"$REPORT"
        fi
    fi
fi

echo >>"$REPORT"
echo "Load average at end: $(cut -d ' ' -f 1-3 /proc/loadavg 2>/dev/null || echo unknown)." >>"$REPORT"

mkdir -p "$(dirname "$OUT")"
cp "$REPORT" "$OUT"
{
    printf 'section\tserver\tpipeline\ttest\tround\trps\tavg_ms\tmin_ms\tp50_ms\tp95_ms\tp99_ms\tmax_ms\n'
    cat "$RAW_TMP"
} >"$RAW"
info "report written to $OUT (raw per-round results: $RAW)"
cat "$REPORT"
