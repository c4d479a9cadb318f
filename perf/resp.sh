#!/usr/bin/env bash
# shardkv's RESP front-end against Debian's redis-server 7, loaded identically in the same run:
# throughput, latency, server CPU per request, and memory per key. From a checkout with a built
# release binary (this script does not build):
#
#   bash perf/resp.sh                  # the full run: 1M requests per test, 3 rounds, 1M-key memory
#   bash perf/resp.sh --quick          # smoke: 20k requests per test, 20k keys (about 15 s)
#   bash perf/resp.sh --bin-a redis    # redis-server on both sides: validates the script itself
#
# Sides: A is shardkv (target/release/shardkv, started with `--listen 127.0.0.1:0
# --resp-listen 127.0.0.1:0`, its port read from the "listening on redis://ADDR" line it logs)
# unless --bin-a says otherwise; B is `redis-server --save '' --appendonly no` on a free
# loopback port. Both start fresh for every pass.
#
# Load: for each pass, ROUNDS rounds; in each round every configuration runs against both sides,
# A first in odd rounds and B first in even ones. A configuration is one `redis-benchmark -c 50
# -n N --csv` invocation per test (SET, then GET, so each test gets its own server CPU figure):
#   P1         -P 1
#   P16        -P 16                (latency is per pipelined batch, as redis-benchmark counts it)
#   threads2   --threads 2 -P 1     (its elapsed time comes in steps of about 250 ms, as seen with
#                                    7.0.15: only runs of many seconds give a usable rps)
# redis-benchmark's keys are its defaults (one key, `key:__rand_int__`, 3-byte value) unless
# --keyspace R adds `-r R`. After each pass, GET of that key must return 3 letters (the SETs
# landed).
# Reported per pass, configuration, test and side: rps of every round and the medians of rps,
# p50 and p99 (each taken over the rounds on its own), and server CPU per request: utime + stime
# of the server process from /proc/PID/stat around the invocation, divided by N.
#
# Pinning: with 2 or more cores the server runs on core 0 (`taskset -c 0`, so shardkv's default
# worker count is 1) and redis-benchmark and redis-cli on core 1. --unpinned adds a pass with no
# pinning after the pinned one (on 1 core only the unpinned pass runs).
#
# Memory: KEYS keys `key:%012d` (16 bytes) with 100-byte values (the key's number, zero-padded),
# written as RESP SET commands into a file once and fed to each fresh server by `redis-cli
# --pipe` (which needs SET and ECHO). The server's DBSIZE must then equal KEYS. Reported: VmRSS
# before and after, RSS growth per key, and INFO memory's used_memory growth per key where the
# server reports it ("n/a" otherwise). Servers are pinned as in the first pass.
#
# Output: a markdown table on stdout; every raw log (server logs, redis-benchmark CSV, redis-cli
# --pipe output) in OUT, a new temporary directory unless --out says where, named at the end.
#
# Options: --quick, --requests N (per test, default 1000000; quick 20000), --rounds N (default 3),
# --keys N (memory keys, default 1000000; quick 20000), --keyspace R, --unpinned, --no-memory,
# --no-load, --bin-a PATH|redis (also $RESP_BIN_A), --server-args "ARGS" (extra shardkv flags,
# e.g. "--workers 2"), --out DIR, --help.
set -euo pipefail
# shellcheck source=perf/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
perf_init resp

BIN_A=${RESP_BIN_A:-$(target_dir)/release/shardkv}
REQUESTS=""
KEYS=""
ROUNDS=3
KEYSPACE=""
QUICK=0
UNPINNED=0
MEMORY=1
LOAD=1
SERVER_ARGS=""
OUT=""
ARGS_GIVEN="$*"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --requests) REQUESTS=${2:?--requests needs a number}; shift ;;
        --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
        --keys) KEYS=${2:?--keys needs a number}; shift ;;
        --keyspace) KEYSPACE=${2:?--keyspace needs a number}; shift ;;
        --unpinned) UNPINNED=1 ;;
        --no-memory) MEMORY=0 ;;
        --no-load) LOAD=0 ;;
        --bin-a) BIN_A=${2:?--bin-a needs a path or redis}; shift ;;
        --server-args) SERVER_ARGS=${2?--server-args needs a string}; shift ;;
        --out) OUT=${2:?--out needs a directory}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    REQUESTS=${REQUESTS:-20000}
    KEYS=${KEYS:-20000}
else
    REQUESTS=${REQUESTS:-1000000}
    KEYS=${KEYS:-1000000}
fi
for n in "$REQUESTS" "$KEYS" "$ROUNDS" ${KEYSPACE:+"$KEYSPACE"}; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "'$n' is not a positive number"
done

need_apt redis-server redis-server
need_apt redis-benchmark redis-tools
need_apt redis-cli redis-tools
need_apt taskset util-linux
need_apt python3 python3
REDIS=$(command -v redis-server)

# Side 0 is A, side 1 is B (always redis-server).
if [ "$BIN_A" = redis ]; then
    KIND=(redis redis)
    NAMES=(redis-a redis-b)
else
    [ -x "$BIN_A" ] || die "$BIN_A is not an executable (build it: flock /tmp/cargo.lock cargo build --release)"
    KIND=(shardkv redis)
    NAMES=(shardkv redis)
fi

if [ -z "$OUT" ]; then
    OUT=$(mktemp -d "${TMPDIR:-/tmp}/resp-perf.XXXXXX")
else
    mkdir -p "$OUT"
fi

NPROC=$(nproc)
PASSES=()
if [ "$NPROC" -ge 2 ]; then
    PASSES+=(pinned)
    [ "$UNPINNED" = 1 ] && PASSES+=(unpinned)
else
    PASSES+=(unpinned)
fi
SERVER_PIN=()
CLIENT_PIN=()
set_pinning() { # pass
    if [ "$1" = pinned ]; then
        SERVER_PIN=(taskset -c 0)
        CLIENT_PIN=(taskset -c 1)
    else
        SERVER_PIN=()
        CLIENT_PIN=()
    fi
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "raw logs in $OUT; load average (1, 5, 15 min): $LOAD_BEFORE"

# ---------------------------------------------------------------- servers
cli() { # port args...: redis-cli against the loopback port, pinned like the load generator
    local port=$1
    shift
    "${CLIENT_PIN[@]}" redis-cli -h 127.0.0.1 -p "$port" "$@"
}

# start_side I LOG: starts side I fresh (pinned per SERVER_PIN), waits until it answers PING;
# sets SIDE_PID[I] and SIDE_PORT[I].
SIDE_PID=()
SIDE_PORT=()
start_side() {
    local i=$1 logf=$2 pid port="" from=0 attempt
    for attempt in 1 2 3; do
        if [ -f "$logf" ]; then from=$(wc -l <"$logf"); fi
        if [ "${KIND[$i]}" = redis ]; then
            port=$(free_port)
            "${SERVER_PIN[@]}" "$REDIS" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
                --daemonize no >>"$logf" 2>&1 &
        else
            # shellcheck disable=SC2086 # SERVER_ARGS is a list of flags
            "${SERVER_PIN[@]}" "$BIN_A" --listen 127.0.0.1:0 --resp-listen 127.0.0.1:0 $SERVER_ARGS \
                >>"$logf" 2>&1 &
            port=""
        fi
        pid=$!
        PIDS+=("$pid")
        for _ in $(seq $((START_TIMEOUT * 10))); do
            if [ "${KIND[$i]}" = shardkv ] && [ -z "$port" ]; then
                port=$(tail -n +"$((from + 1))" "$logf" | grep -o 'listening on redis://127\.0\.0\.1:[0-9]*' |
                    head -1 | sed 's|.*:||') || true
            fi
            if [ -n "$port" ] && [ "$(cli "$port" ping 2>/dev/null)" = PONG ]; then
                SIDE_PID[i]=$pid
                SIDE_PORT[i]=$port
                log "${NAMES[$i]}: pid $pid on 127.0.0.1:$port${SERVER_PIN[*]:+ (${SERVER_PIN[*]})}"
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            tail -n +"$((from + 1))" "$logf" >&2
            die "${NAMES[$i]} did not answer PING on a redis:// port within $START_TIMEOUT s (log: $logf)"
        fi
        wait "$pid" 2>/dev/null || true
        forget "$pid"
        # A redis-server can lose its free port to another process before binding it: retry.
        [ "${KIND[$i]}" = redis ] || break
        log "${NAMES[$i]} exited at start-up (attempt $attempt; log: $logf)"
    done
    tail -n +"$((from + 1))" "$logf" >&2
    die "${NAMES[$i]} exited at start-up (log: $logf)"
}
stop_sides() {
    local i
    for i in 0 1; do
        if [ -n "${SIDE_PID[$i]:-}" ]; then
            stop_server "${SIDE_PID[$i]}"
            SIDE_PID[i]=""
        fi
    done
}

# ---------------------------------------------------------------- load
CONFIGS=(P1 P16 threads2)
declare -A CONFIG_ARGS=([P1]="-P 1" [P16]="-P 16" [threads2]="--threads 2 -P 1")
TESTS=(set get)
declare -A RPS P50 P99 CPU

# bench PASS CONFIG TEST I: one redis-benchmark invocation; records its figures.
bench() {
    local pass=$1 config=$2 test=$3 i=$4 csv ticks line rps p50 p99 cpu_ns key
    csv="$OUT/bench-$pass-$config-$test-${NAMES[$i]}.csv"
    ticks=$(cpu_ticks "${SIDE_PID[$i]}")
    # shellcheck disable=SC2086 # CONFIG_ARGS is a list of flags
    "${CLIENT_PIN[@]}" redis-benchmark -h 127.0.0.1 -p "${SIDE_PORT[$i]}" -c 50 -n "$REQUESTS" \
        -t "$test" ${CONFIG_ARGS[$config]} ${KEYSPACE:+-r "$KEYSPACE"} --csv \
        >>"$csv" 2>>"$OUT/bench-stderr.log" || die "redis-benchmark failed on ${NAMES[$i]} ($csv)"
    ticks=$(($(cpu_ticks "${SIDE_PID[$i]}") - ticks))
    line=$(grep -i "^\"$test\"," "$csv" | tail -1 | tr -d '"') || true
    [ -n "$line" ] || die "${NAMES[$i]} $pass $config $test: redis-benchmark printed no result (see $csv)"
    # test,rps,avg_latency_ms,min_latency_ms,p50_latency_ms,p95_latency_ms,p99_latency_ms,max_latency_ms
    IFS=, read -r _ rps _ _ p50 _ p99 _ <<<"$line"
    awk -v r="$rps" 'BEGIN { exit !(r > 0) }' || die "${NAMES[$i]} $pass $config $test: $rps rps"
    cpu_ns=$((ticks * 1000000000 / CLK_TCK / REQUESTS))
    key="$pass,$config,$test,$i"
    RPS[$key]="${RPS[$key]:-} ${rps%.*}"
    P50[$key]="${P50[$key]:-} $p50"
    P99[$key]="${P99[$key]:-} $p99"
    CPU[$key]="${CPU[$key]:-} $cpu_ns"
    log "$pass $config $test ${NAMES[$i]}: ${rps%.*} rps, p50 $p50 ms, p99 $p99 ms, $cpu_ns ns server CPU/request"
}

run_pass() { # pass
    local pass=$1 round config test i order value
    set_pinning "$pass"
    for i in 0 1; do start_side "$i" "$OUT/server-${NAMES[$i]}-$pass.log"; done
    for round in $(seq "$ROUNDS"); do
        order=(0 1)
        [ $((round % 2)) -eq 0 ] && order=(1 0)
        for config in "${CONFIGS[@]}"; do
            for i in "${order[@]}"; do
                for test in "${TESTS[@]}"; do bench "$pass" "$config" "$test" "$i"; done
            done
        done
    done
    if [ -z "$KEYSPACE" ]; then
        # redis-benchmark SETs `key:__rand_int__` to 3 random letters (its default data size).
        for i in 0 1; do
            value=$(cli "${SIDE_PORT[$i]}" get 'key:__rand_int__')
            [[ "$value" =~ ^[A-Za-z]{3}$ ]] ||
                die "${NAMES[$i]}: GET key:__rand_int__ returned '$value', expected 3 letters"
        done
    fi
    stop_sides
}

# ---------------------------------------------------------------- memory
used_memory() { # port: INFO memory's used_memory, or nothing
    cli "$1" info memory 2>/dev/null | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }'
}
declare -A MEM
run_memory() {
    local gen i port pid rss0 rss1 used0 used1 t0 t1 pipe_out keys
    set_pinning "${PASSES[0]}"
    # The commands (about 144 bytes a key) go to a directory removed at exit, even on failure.
    gen=$(mktemp -d "${TMPDIR:-/tmp}/resp-perf-commands.XXXXXX")
    CLEANUP_DIRS+=("$gen")
    gen="$gen/set-commands.resp"
    log "generating $KEYS SET commands"
    awk -v n="$KEYS" 'BEGIN {
        for (i = 0; i < n; i++) {
            k = sprintf("key:%012d", i); v = sprintf("%0100d", i)
            printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
        }
    }' >"$gen"
    for i in 0 1; do
        start_side "$i" "$OUT/server-${NAMES[$i]}-memory.log"
        port=${SIDE_PORT[$i]}
        pid=${SIDE_PID[$i]}
        sleep 1
        rss0=$(status_kb "$pid" VmRSS)
        used0=$(used_memory "$port")
        t0=$(date +%s%N)
        pipe_out="$OUT/memory-pipe-${NAMES[$i]}.txt"
        cli "$port" --pipe --pipe-timeout 30 <"$gen" >"$pipe_out" 2>&1 ||
            die "${NAMES[$i]}: redis-cli --pipe failed (see $pipe_out)"
        t1=$(date +%s%N)
        grep -q "errors: 0, replies: $KEYS\$" "$pipe_out" ||
            die "${NAMES[$i]}: redis-cli --pipe did not get $KEYS replies without errors: $(tail -1 "$pipe_out")"
        keys=$(cli "$port" dbsize)
        [ "$keys" = "$KEYS" ] || die "${NAMES[$i]}: DBSIZE is '$keys' after loading $KEYS keys"
        sleep 1
        rss1=$(status_kb "$pid" VmRSS)
        used1=$(used_memory "$port")
        MEM[$i]=$(awk -v r0="$rss0" -v r1="$rss1" -v u0="$used0" -v u1="$used1" -v k="$KEYS" \
            -v ns=$((t1 - t0)) 'BEGIN {
                used = (u0 != "" && u1 != "") ? sprintf("%.1f", (u1 - u0) / k) : "n/a"
                printf "%.1f | %.1f | %.1f | %s | %.2f | %.0f", r0 / 1024, r1 / 1024, (r1 - r0) * 1024 / k,
                    used, ns / 1e9, k / (ns / 1e9)
            }')
        log "${NAMES[$i]} memory: $KEYS keys; RSS $rss0 -> $rss1 kB; used_memory ${used0:-n/a} -> ${used1:-n/a}"
        stop_sides
    done
    rm -f "$gen"
}

# ---------------------------------------------------------------- run
if [ "$LOAD" = 1 ]; then
    for pass in "${PASSES[@]}"; do run_pass "$pass"; done
fi
[ "$MEMORY" = 1 ] && run_memory

# ---------------------------------------------------------------- report
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo
if [ "$LOAD" = 1 ]; then
    echo "### RESP load: ${NAMES[0]} vs ${NAMES[1]}"
    echo
    echo "Medians over $ROUNDS alternated rounds of \`redis-benchmark -c 50 -n $REQUESTS${KEYSPACE:+ -r $KEYSPACE} -t TEST ARGS --csv\`; ratios are ${NAMES[0]} / ${NAMES[1]}."
    echo
    echo "| pass | config | test | side | rps per round | median rps | rps ratio | p50 ms | p99 ms | server CPU ns/req | CPU ratio |"
    echo "|---|---|---|---|---|--:|--:|--:|--:|--:|--:|"
    for pass in "${PASSES[@]}"; do
        for config in "${CONFIGS[@]}"; do
            for test in "${TESTS[@]}"; do
                ref_rps=$(median <<<"${RPS[$pass,$config,$test,1]}")
                ref_cpu=$(median <<<"${CPU[$pass,$config,$test,1]}")
                for i in 0 1; do
                    key="$pass,$config,$test,$i"
                    m_rps=$(median <<<"${RPS[$key]}")
                    m_cpu=$(median <<<"${CPU[$key]}")
                    r_rps="" r_cpu=""
                    if [ "$i" = 0 ]; then
                        r_rps=$(ratio "$m_rps" "$ref_rps")
                        r_cpu=$(ratio "$m_cpu" "$ref_cpu")
                    fi
                    echo "| $pass | $config (${CONFIG_ARGS[$config]}) | ${test^^} | ${NAMES[$i]} |${RPS[$key]} | $m_rps | $r_rps | $(median <<<"${P50[$key]}") | $(median <<<"${P99[$key]}") | $m_cpu | $r_cpu |"
                done
            done
        done
    done
    echo
fi
if [ "$MEMORY" = 1 ]; then
    echo "### Memory: $KEYS keys (16-byte keys \`key:%012d\`, 100-byte values) loaded with \`redis-cli --pipe\`"
    echo
    echo "| side | RSS empty MiB | RSS loaded MiB | RSS bytes/key | used_memory bytes/key | load s | keys/s |"
    echo "|---|--:|--:|--:|--:|--:|--:|"
    for i in 0 1; do echo "| ${NAMES[$i]} | ${MEM[$i]} |"; done
    echo
fi
pin_note="server and clients unpinned"
[ "${PASSES[0]}" = pinned ] && pin_note="pinned pass: server \`taskset -c 0\`, redis-benchmark and redis-cli \`taskset -c 1\`"
echo "- command: \`bash perf/resp.sh${ARGS_GIVEN:+ $ARGS_GIVEN}\` at rev $(git -C "$PERF_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u '+%Y-%m-%d %H:%M UTC')"
redis_cmd="$REDIS --save '' --appendonly no ($("$REDIS" --version | grep -o 'v=[0-9.]*'))"
side_a=$redis_cmd
[ "${KIND[0]}" = redis ] || side_a="$BIN_A --listen 127.0.0.1:0 --resp-listen 127.0.0.1:0${SERVER_ARGS:+ $SERVER_ARGS}"
echo "- sides: ${NAMES[0]} = $side_a; ${NAMES[1]} = $redis_cmd"
echo "- $pin_note; $(redis-benchmark --version)"
echo "- machine: $NPROC cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr); load average before: $LOAD_BEFORE"
echo "- raw logs: $OUT"
log "done; raw logs in $OUT"
