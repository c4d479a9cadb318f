#!/usr/bin/env bash
# RSS against the memory cap under constant eviction: a fresh shardkv per row with
# `--max-memory CAP --maxmemory-policy allkeys-lru`, then KEYS (3 × what fits) 100-byte SETs fed
# with `redis-cli --pipe`, without and with a TTL, for both store kinds. Reports the keys left
# resident, the estimate, and RSS growth over the empty server's RSS as a fraction of the cap
# (the target: within 10%). From a checkout:
#
#   bash perf/eviction_rss.sh             # 200 MB cap, 3M writes per row
#   bash perf/eviction_rss.sh --quick     # 20 MB cap, 300k writes: checks the script
#
# Options: --cap BYTES (default 200000000), --keys N (default 3000000), --ttl SECONDS (default
# 3600, for the TTL rows), --bin PATH (default target/dist/shardkv), --quick, --help.
set -euo pipefail
# shellcheck source=perf/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
perf_init eviction-rss

CAP=200000000
KEYS=3000000
TTL=3600
BIN="$(target_dir)/dist/shardkv"
while [ $# -gt 0 ]; do
    case "$1" in
        --cap) CAP=${2:?}; shift ;;
        --keys) KEYS=${2:?}; shift ;;
        --ttl) TTL=${2:?}; shift ;;
        --bin) BIN=${2:?}; shift ;;
        --quick) CAP=20000000; KEYS=300000 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
need_apt redis-cli redis-tools
[ -x "$BIN" ] || cargo_build --profile dist --bin shardkv
OUT="$PERF_DIR/out"
mkdir -p "$OUT/logs"

TABLE="$OUT/eviction-rss.md"
{
    echo "RSS under constant eviction: allkeys-lru, cap $CAP bytes, $KEYS SETs of 100-byte values:"
    echo
    echo "| store | TTL | resident keys | estimate | RSS growth | RSS growth / cap |"
    echo "|---|---|--:|--:|--:|--:|"
} >"$TABLE"
for kind in lockfree rwlock; do
    for ttl in "" "$TTL"; do
        start_resp_server "$OUT/logs/eviction-rss.log" "$BIN" --replicas 0 --store "$kind" \
            --max-memory "$CAP" --maxmemory-policy allkeys-lru --log warn,shardkv=info
        base=$(status_kb "$SERVER_PID" VmRSS)
        python3 "$PERF_DIR/resp_load.py" "$KEYS" "$ttl" | redis-cli -p "$RESP_PORT" --pipe >/dev/null
        sleep 1
        rss=$(status_kb "$SERVER_PID" VmRSS)
        resident=$(redis-cli -p "$RESP_PORT" dbsize)
        estimate=$(used_memory "$RESP_PORT")
        stop_server "$SERVER_PID"
        growth=$(((rss - base) * 1024))
        ratio=$(python3 -c "print('%.3f' % ($growth / $CAP))")
        log "$kind ttl=${ttl:-none}: $resident resident, estimate $estimate, RSS growth $growth ($ratio of the cap)"
        echo "| $kind | ${ttl:-none} | $resident | $estimate | $growth | $ratio |" >>"$TABLE"
    done
done
cat "$TABLE"
