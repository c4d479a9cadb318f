#!/usr/bin/env bash
# Cache hit ratio under a memory cap: the same traces against redis-server (Debian's) and, once
# it can evict, shardkv, with the same maxmemory and policy, in one run. From a checkout:
#
#   bash perf/eviction.sh                 # zipf and scan traces, allkeys-lru and allkeys-lfu, 5 seeds
#   bash perf/eviction.sh --quick         # 1 seed, a short trace: checks the script
#
# Each (server, policy, trace, seed) gets a fresh server on a free loopback port. For Redis:
# `redis-server --save '' --appendonly no --maxmemory M --maxmemory-policy P`; for shardkv:
# `--replicas 0`, then `CONFIG SET maxmemory M` and `CONFIG SET maxmemory-policy P` over RESP
# (a shardkv that refuses the policy is reported as such and skipped). M is the empty server's
# used_memory plus FIT × (per-key bytes measured on a first 10k-key fill of that server kind), so
# about FIT keys fit: the comparison at an equal number of resident keys. perf/hitratio.py then
# replays the trace (GET, and SET on a miss) and reports the hit ratio after a 10% warm-up.
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
        --quick) KEYS=20000; REQUESTS=100000; SEEDS=1 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
FIT=${FIT:-$((KEYS / 10))}
need_apt redis-server redis-server
need_apt redis-cli redis-tools
OUT="$PERF_DIR/out"
mkdir -p "$OUT/logs"

# start KIND: a fresh server; sets PORT and PID.
start() {
    local logf="$OUT/logs/eviction-$1.log"
    if [ "$1" = redis ]; then
        start_resp_server "$logf" redis
    else
        start_resp_server "$logf" "$BIN" --replicas 0 --log warn,shardkv=info
    fi
    PID=$SERVER_PID
    PORT=$RESP_PORT
}
stop() { stop_server "$PID"; }

# The per-key bytes of a server kind, from a 10k-key fill, and its empty used_memory.
calibrate() {
    start "$1"
    local base after
    base=$(used_memory "$PORT")
    python3 "$PERF_DIR/resp_load.py" 10000 | redis-cli -p "$PORT" --pipe >/dev/null
    after=$(used_memory "$PORT")
    stop
    echo "$base $(((after - base) / 10000))"
}

SERVERS=(redis)
if [ -x "$BIN" ]; then SERVERS+=(shardkv); else log "$BIN not built: shardkv skipped"; fi
ROWS=()
for server in "${SERVERS[@]}"; do
    read -r base per < <(calibrate "$server")
    maxmemory=$((base + FIT * per))
    log "$server: empty used_memory $base, $per bytes per key: maxmemory $maxmemory for about $FIT keys"
    for policy in $POLICIES; do
        for trace in zipf scan; do
            for seed in $(seq "$SEEDS"); do
                start "$server"
                if ! redis-cli -p "$PORT" config set maxmemory "$maxmemory" | grep -q OK ||
                    ! redis-cli -p "$PORT" config set maxmemory-policy "$policy" | grep -q OK; then
                    log "$server refuses maxmemory $maxmemory with policy $policy: skipped"
                    stop
                    continue 3
                fi
                result=$(python3 "$PERF_DIR/hitratio.py" --port "$PORT" --trace "$trace" --keys "$KEYS" \
                    --requests "$REQUESTS" --seed "$seed")
                stop
                ratio=$(echo "$result" | python3 -c 'import json, sys; d = json.load(sys.stdin); print("%.4f %s %s" % (d["hit_ratio"], d["dbsize"], d["evicted_keys"]))')
                log "$server $policy $trace seed $seed: hit ratio, resident keys, evicted: $ratio"
                ROWS+=("$server,$policy,$trace,$seed,${ratio// /,}")
            done
        done
    done
done

TABLE="$OUT/eviction.md"
{
    echo "Hit ratio (GET, SET on a miss), $REQUESTS requests over $KEYS keys, memory for about $FIT keys, median of $SEEDS seeds (min–max):"
    echo
    echo "| server | policy | trace | hit ratio | resident keys at the end |"
    echo "|---|---|---|--:|--:|"
    printf '%s\n' "${ROWS[@]}" | awk -F, '
        { k = $1 "," $2 "," $3; if (!(k in n)) order[++m] = k; n[k]++; r[k, n[k]] = $5; d[k, n[k]] = $6 }
        END {
            for (i = 1; i <= m; i++) {
                k = order[i]; c = n[k]
                for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (r[k, b] < r[k, a]) { t = r[k, a]; r[k, a] = r[k, b]; r[k, b] = t; t = d[k, a]; d[k, a] = d[k, b]; d[k, b] = t }
                split(k, f, ",")
                printf "| %s | %s | %s | %.4f (%.4f–%.4f) | %d |\n", f[1], f[2], f[3], r[k, int((c + 1) / 2)], r[k, 1], r[k, c], d[k, int((c + 1) / 2)]
            }
        }'
} >"$TABLE"
cat "$TABLE"
