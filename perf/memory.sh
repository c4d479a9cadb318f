#!/usr/bin/env bash
# Memory per key: shardkv (both store kinds) against Debian's redis-server, loaded with the same
# bytes in the same run. From a checkout:
#
#   bash perf/memory.sh                     # 1M keys with a 3600 s TTL, then 1M without
#   bash perf/memory.sh --keys 10000000     # the same at 10M keys (about 3 GiB per server)
#   bash perf/memory.sh --quick             # 20k keys, CI smoke: checks the script, not a figure
#
# Each server starts fresh on a free loopback port: shardkv (`--replicas 0`, default flags
# otherwise; `--store lockfree` and `--store rwlock`) and `redis-server --save '' --appendonly
# no`. perf/resp_load.py writes KEYS RESP `SET kN <100 bytes> [EX TTL]` commands (keys `k0` ...,
# 2 to 8 bytes: the short keys of a typical cache) and `redis-cli --pipe` feeds the same bytes to
# each; DBSIZE must then equal KEYS. Reported per server: VmRSS before and 2 s after the load,
# RSS growth per key, and INFO's used_memory per key (shardkv's is its memory estimate, the
# figure --max-memory applies to). Writes a markdown table to perf/out/memory.md (and
# perf/out/memory.csv for perf/plot.py) and prints it.
#
# Options: --keys N (default 1000000), --ttl "3600 none" (the TTL passes; "none" = no TTL),
# --bin PATH (default target/dist/shardkv), --quick, --help.
set -euo pipefail
# shellcheck source=perf/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
perf_init memory

KEYS=1000000
TTLS="3600 none"
BIN="$(target_dir)/dist/shardkv"
while [ $# -gt 0 ]; do
    case "$1" in
        --keys) KEYS=${2:?--keys needs a number}; shift ;;
        --ttl) TTLS=${2:?--ttl needs values}; shift ;;
        --bin) BIN=${2:?--bin needs a path}; shift ;;
        --quick) KEYS=20000; TTLS=3600 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
need_apt redis-server redis-server
need_apt redis-cli redis-tools
[ -x "$BIN" ] || die "$BIN is not built (cargo build --profile dist --bin shardkv)"
OUT="$PERF_DIR/out"
mkdir -p "$OUT/logs"

ROWS=()
measure() { # name ttl
    local name=$1 ttl=$2 logf="$OUT/logs/memory-$1-$2.log" pid port rss0 rss1 used0 used1 keys t0 t1
    if [ "$name" = redis ]; then
        start_resp_server "$logf" redis
    else
        start_resp_server "$logf" "$BIN" --replicas 0 --store "$name" --log warn,shardkv=info
    fi
    pid=$SERVER_PID
    port=$RESP_PORT
    sleep 1
    rss0=$(status_kb "$pid" VmRSS)
    used0=$(used_memory "$port")
    t0=$(date +%s%N)
    python3 "$PERF_DIR/resp_load.py" "$KEYS" "$([ "$ttl" = none ] || echo "$ttl")" |
        redis-cli -p "$port" --pipe --pipe-timeout 60 >"$logf.pipe" 2>&1 || die "$name: redis-cli --pipe failed (see $logf.pipe)"
    t1=$(date +%s%N)
    sleep 2
    keys=$(redis-cli -p "$port" dbsize | tr -d '\r')
    [ "$keys" = "$KEYS" ] || die "$name: DBSIZE is $keys after loading $KEYS keys"
    rss1=$(status_kb "$pid" VmRSS)
    used1=$(used_memory "$port")
    stop_server "$pid"
    local row
    row=$(awk -v n="$name" -v t="$ttl" -v k="$KEYS" -v a="$rss0" -v b="$rss1" -v u="$used0" -v v="$used1" -v t0="$t0" -v t1="$t1" 'BEGIN {
        printf "%s,%s,%d,%.1f,%.1f,%.1f,%.1f,%.1f", n, t, k, a / 1024, b / 1024, (b - a) * 1024 / k, (v - u) / k, (t1 - t0) / 1e9 }')
    ROWS+=("$row")
    log "memory $row"
}

for ttl in $TTLS; do
    for name in lockfree rwlock redis; do
        measure "$name" "$ttl"
    done
done

TABLE="$OUT/memory.md"
{
    echo "Memory: $KEYS keys \`k0\`… (2–8 bytes), 100-byte values, loaded with \`redis-cli --pipe\` (perf/resp_load.py) into fresh servers; RSS read 2 s after the load."
    echo
    echo "| server | TTL | keys | RSS empty MiB | RSS loaded MiB | RSS bytes/key | used_memory bytes/key | load s |"
    echo "|---|---|--:|--:|--:|--:|--:|--:|"
    for row in "${ROWS[@]}"; do
        IFS=, read -r n t k a b per used secs <<<"$row"
        label=$n
        [ "$n" = redis ] && label="redis-server $(redis-server --version | grep -o 'v=[0-9.]*' | cut -d= -f2)"
        [ "$n" != redis ] && label="shardkv $n"
        echo "| $label | $([ "$t" = none ] && echo none || echo "${t} s") | $k | $a | $b | **$per** | $used | $secs |"
    done
    echo
    for ttl in $TTLS; do
        redis=$(printf '%s\n' "${ROWS[@]}" | awk -F, -v t="$ttl" '$1 == "redis" && $2 == t { print $6 }')
        for name in lockfree rwlock; do
            ours=$(printf '%s\n' "${ROWS[@]}" | awk -F, -v t="$ttl" -v n="$name" '$1 == n && $2 == t { print $6 }')
            awk -v n="$name" -v t="$ttl" -v a="$ours" -v b="$redis" 'BEGIN {
                printf "- %s, TTL %s: %.1f B/key against Redis %.1f: %.2f× (%s)\n", n, t, a, b, a / b, (a <= b) ? "at or below Redis" : "above Redis" }'
        done
    done
} >"$TABLE"
{
    echo "server,ttl,keys,rss_empty_mib,rss_loaded_mib,rss_bytes_per_key,used_memory_bytes_per_key,load_s"
    printf '%s\n' "${ROWS[@]}"
} >"$OUT/memory.csv"
cat "$TABLE"
