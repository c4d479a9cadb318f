#!/usr/bin/env bash
# What constant eviction costs: GET and SET throughput over RESP with a memory cap small
# enough that every SET of a new key evicts one (allkeys-lru), against the same load with no
# cap, alternated, in one run. From a checkout:
#
#   bash perf/eviction_cost.sh            # 3 rounds of 300k requests per test
#   bash perf/eviction_cost.sh --quick    # 1 round of 50k: checks the script
#
# Each side is a fresh shardkv (`--replicas 0`, 1M-key space, 100-byte values, redis-benchmark
# -c 50). The capped side gets `--max-memory CAP --maxmemory-policy allkeys-lru` with CAP room
# for about 50k keys, and is first filled past it, so the measured SETs all evict; the other
# side has no cap (the default, half the machine's memory) and the same fill. GET reads the
# same random keys on both sides (misses on the capped side are answered as misses: same work
# to the server but for the value copy). The uncapped server ends up holding 20 times the
# keys, which costs it cache misses and table growth, so a third side runs the same requests
# over a 50k-key space with no cap ("fits": the capped side's table, without evicting): capped /
# fits is what evicting itself costs. Reports the median rps per side and both ratios.
#
# Options: --requests N (default 300000), --rounds N (default 3), --bin PATH (default
# target/dist/shardkv), --quick, --help.
set -euo pipefail
# shellcheck source=perf/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
perf_init eviction-cost

REQUESTS=300000
ROUNDS=3
BIN="$(target_dir)/dist/shardkv"
while [ $# -gt 0 ]; do
    case "$1" in
        --requests) REQUESTS=${2:?}; shift ;;
        --rounds) ROUNDS=${2:?}; shift ;;
        --bin) BIN=${2:?}; shift ;;
        --quick) REQUESTS=50000; ROUNDS=1 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
need_apt redis-benchmark redis-tools
[ -x "$BIN" ] || cargo_build --profile dist --bin shardkv
OUT="$PERF_DIR/out"
mkdir -p "$OUT/logs"
CAP=$((50000 * 220))

# bench SIDE TEST: one fresh server, filled, then TEST measured; prints its rps.
bench() {
    local side=$1 test=$2 space=1000000
    local args=(--replicas 0 --log "warn,shardkv=info")
    [ "$side" = capped ] && args+=(--max-memory "$CAP" --maxmemory-policy allkeys-lru)
    [ "$side" = fits ] && space=50000
    start_resp_server "$OUT/logs/eviction-cost-$side.log" "$BIN" "${args[@]}"
    redis-benchmark -p "$RESP_PORT" -t set -n 200000 -r "$space" -d 100 -c 50 -q >/dev/null
    local rps
    rps=$(redis-benchmark -p "$RESP_PORT" -t "$test" -n "$REQUESTS" -r "$space" -d 100 -c 50 --csv |
        awk -F'"' 'NR == 2 { print $4 }')
    local evicted
    evicted=$(redis-cli -p "$RESP_PORT" info stats | tr -d '\r' | awk -F: '$1 == "evicted_keys" { print $2 }')
    stop_server "$SERVER_PID"
    log "$side $test: $rps rps (evicted_keys $evicted)"
    echo "$rps"
}

declare -A RPS
for round in $(seq "$ROUNDS"); do
    for test in set get; do
        # Alternate which side goes first in each round.
        if [ $((round % 2)) = 1 ]; then order="uncapped fits capped"; else order="capped fits uncapped"; fi
        for side in $order; do
            RPS[$side,$test]="${RPS[$side,$test]:-} $(bench "$side" "$test")"
        done
    done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
TABLE="$OUT/eviction-cost.md"
{
    echo "RESP throughput with constant eviction (allkeys-lru, cap for ~50k keys, 1M-key space) against no cap, median of $ROUNDS alternated rounds of $REQUESTS requests:"
    echo
    echo "| test | no cap rps | no cap, 50k keys rps | capped rps | capped / no cap | capped / no cap, 50k keys |"
    echo "|---|--:|--:|--:|--:|--:|"
    for test in set get; do
        u=$(echo "${RPS[uncapped,$test]}" | median)
        f=$(echo "${RPS[fits,$test]}" | median)
        c=$(echo "${RPS[capped,$test]}" | median)
        echo "| $test | $u | $f | $c | $(python3 -c "print('%.2f' % ($c / $u))") | $(python3 -c "print('%.2f' % ($c / $f))") |"
    done
} >"$TABLE"
cat "$TABLE"
