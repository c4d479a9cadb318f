#!/usr/bin/env bash
# Cache hit ratio under a memory cap: the same traces against redis-server (Debian's) and, once
# it can evict, shardkv, with the same maxmemory and policy, in one run. From a checkout:
#
#   bash perf/eviction.sh                 # zipf and scan traces, allkeys-lru and allkeys-lfu, 5 seeds
#   bash perf/eviction.sh --quick         # 1 seed, a short trace: checks the script
#
# Each (server, policy, trace, seed) gets a fresh server on a free loopback port. For Redis:
# `redis-server --save '' --appendonly no`, then `CONFIG SET maxmemory M` and `CONFIG SET
# maxmemory-policy P`; for shardkv: `--replicas 0 --max-memory M --maxmemory-policy P`. Two
# budgets: "keys" sets M to the empty server's used_memory plus FIT × (used_memory per key on a
# FIT-key fill of that server kind), so about FIT keys fit in each: the policies compared at an
# equal number of resident keys. "rss" gives shardkv the RSS growth Redis shows for FIT keys
# (RSS per key from a max(FIT, 1M)-key fill of each: smaller fills measure the allocators'
# first segments more than the keys), turned into shardkv's keys and cap:
# what a user gets per gigabyte. perf/hitratio.py then replays the trace (GET, and SET on a
# miss) and reports the hit ratio after a 10% warm-up.
# Traces: zipf = Zipf(0.99) over KEYS keys (10 × FIT by default); scan = the same with a one-off
# scan of KEYS / 2 cold keys at its middle. Prints a markdown table of the median hit ratio over
# the seeds (min–max beside it) and writes it to perf/out/eviction.md.
#
# Options: --keys N (default 100000), --fit N (default KEYS / 10), --requests N (default
# 1000000), --seeds N (default 5), --policies "allkeys-lru allkeys-lfu", --bin PATH (shardkv;
# default target/dist/shardkv), --quick, --help.
set -euo pipefail
# shellcheck source=perf/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
perf_init eviction

KEYS=100000
FIT=""
REQUESTS=1000000
SEEDS=5
CALIBRATION=""
POLICIES="allkeys-lru allkeys-lfu"
BIN="$(target_dir)/dist/shardkv"
while [ $# -gt 0 ]; do
    case "$1" in
        --keys) KEYS=${2:?}; shift ;;
        --fit) FIT=${2:?}; shift ;;
        --requests) REQUESTS=${2:?}; shift ;;
        --seeds) SEEDS=${2:?}; shift ;;
        --policies) POLICIES=${2:?}; shift ;;
        --bin) BIN=${2:?}; shift ;;
        --quick) KEYS=20000; REQUESTS=100000; SEEDS=1; CALIBRATION=100000 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
FIT=${FIT:-$((KEYS / 10))}
CALIBRATION=${CALIBRATION:-$((FIT > 1000000 ? FIT : 1000000))}
need_apt redis-server redis-server
need_apt redis-cli redis-tools
OUT="$PERF_DIR/out"
mkdir -p "$OUT/logs"

# start KIND [ARGS...]: a fresh server (shardkv gets ARGS); sets PORT and PID.
start() {
    local kind=$1 logf="$OUT/logs/eviction-$1.log"
    shift
    if [ "$kind" = redis ]; then
        start_resp_server "$logf" redis
    else
        start_resp_server "$logf" "$BIN" --replicas 0 --log warn,shardkv=info "$@"
    fi
    PID=$SERVER_PID
    PORT=$RESP_PORT
}
stop() { stop_server "$PID"; }

# calibrate KIND: fills a fresh server with FIT keys (used_memory per key at the cache's own
# size), then CALIBRATION keys (RSS per key, from a fill large enough for RSS to follow the keys
# rather than the allocator's first segments); prints its empty used_memory and RSS, then
# used_memory and RSS growth per key.
calibrate() {
    start "$1"
    local base base_rss after after_rss
    base=$(used_memory "$PORT")
    base_rss=$(rss_of "$PORT")
    python3 "$PERF_DIR/resp_load.py" "$FIT" | redis-cli -p "$PORT" --pipe >/dev/null
    after=$(used_memory "$PORT")
    python3 "$PERF_DIR/resp_load.py" "$CALIBRATION" | redis-cli -p "$PORT" --pipe >/dev/null
    after_rss=$(rss_of "$PORT")
    stop
    echo "$base $base_rss $(((after - base) / FIT)) $(((after_rss - base_rss) / CALIBRATION))"
}

# rss_of PORT: the server's used_memory_rss from INFO.
rss_of() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: '$1 == "used_memory_rss" { print $2 }'; }

# run SERVER POLICY BUDGET MAXMEMORY BASE_RSS: every trace and seed; appends to ROWS.
run() {
    local server=$1 policy=$2 budget=$3 maxmemory=$4 base_rss=$5 trace seed result ratio rss
    for trace in zipf scan; do
        for seed in $(seq "$SEEDS"); do
            if [ "$server" = redis ]; then
                start redis
                redis-cli -p "$PORT" config set maxmemory "$maxmemory" | grep -q OK
                redis-cli -p "$PORT" config set maxmemory-policy "$policy" | grep -q OK
            else
                start shardkv --max-memory "$maxmemory" --maxmemory-policy "$policy"
            fi
            result=$(python3 "$PERF_DIR/hitratio.py" --port "$PORT" --trace "$trace" --keys "$KEYS" \
                --requests "$REQUESTS" --seed "$seed")
            rss=$(rss_of "$PORT")
            stop
            ratio=$(echo "$result" | python3 -c 'import json, sys; d = json.load(sys.stdin); print("%.4f %s %s" % (d["hit_ratio"], d["dbsize"], d["evicted_keys"]))')
            log "$budget $server $policy $trace seed $seed: hit ratio, resident keys, evicted: $ratio; RSS growth $(((rss - base_rss) / 1024)) KiB"
            ROWS+=("$budget,$server,$policy,$trace,$seed,${ratio// /,},$(((rss - base_rss) / 1024))")
        done
    done
}

SERVERS=(redis)
if [ -x "$BIN" ]; then SERVERS+=(shardkv); else log "$BIN not built: shardkv skipped"; fi
ROWS=()
declare -A BASE BASE_RSS PER PER_RSS
for server in "${SERVERS[@]}"; do
    read -r "BASE[$server]" "BASE_RSS[$server]" "PER[$server]" "PER_RSS[$server]" < <(calibrate "$server")
    log "$server: empty used_memory ${BASE[$server]}, RSS ${BASE_RSS[$server]}; per key ${PER[$server]} B used_memory, ${PER_RSS[$server]} B RSS"
done
for server in "${SERVERS[@]}"; do
    for policy in $POLICIES; do
        # Equal resident keys: each server's cap holds about FIT keys by its own estimate.
        run "$server" "$policy" keys $((BASE[$server] + FIT * PER[$server])) "${BASE_RSS[$server]}"
        # Equal RSS: the RSS growth Redis shows at FIT keys, turned into this server's keys.
        if [ "$server" != redis ]; then
            fit=$((FIT * PER_RSS[redis] / PER_RSS[$server]))
            run "$server" "$policy" rss $((BASE[$server] + fit * PER[$server])) "${BASE_RSS[$server]}"
        fi
    done
done

TABLE="$OUT/eviction.md"
{
    echo "Hit ratio (GET, SET on a miss), $REQUESTS requests over $KEYS keys, memory for about $FIT keys, median of $SEEDS seeds (min–max):"
    echo
    echo "Budget: keys = each server's cap holds about $FIT keys by its own estimate (the policy"
    echo "compared); rss = shardkv's cap is set so its RSS growth matches Redis's at $FIT keys (what a"
    echo "user gets per gigabyte; Redis's rows are the same in both)."
    echo
    echo "| budget | server | policy | trace | hit ratio | resident keys | RSS growth KiB |"
    echo "|---|---|---|---|--:|--:|--:|"
    printf '%s\n' "${ROWS[@]}" | awk -F, '
        { k = $1 "," $2 "," $3 "," $4; if (!(k in n)) order[++m] = k; n[k]++; r[k, n[k]] = $6; d[k, n[k]] = $7; q[k, n[k]] = $9 }
        END {
            for (i = 1; i <= m; i++) {
                k = order[i]; c = n[k]
                for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (r[k, b] < r[k, a]) { t = r[k, a]; r[k, a] = r[k, b]; r[k, b] = t; t = d[k, a]; d[k, a] = d[k, b]; d[k, b] = t; t = q[k, a]; q[k, a] = q[k, b]; q[k, b] = t }
                split(k, f, ",")
                h = int((c + 1) / 2)
                printf "| %s | %s | %s | %s | %.4f (%.4f–%.4f) | %d | %d |\n", f[1], f[2], f[3], f[4], r[k, h], r[k, 1], r[k, c], d[k, h], q[k, h]
            }
        }'
} >"$TABLE"
cat "$TABLE"
