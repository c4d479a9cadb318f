#!/usr/bin/env bash
# Two builds of shardkv side by side, in one run, with alternated rounds and medians: the check
# that a change costs nothing on the hot paths (GET, SET, PUT). From a clean checkout:
#
#   bash perf/compare.sh --bin before=/path/to/old/shardkv --bin after=target/dist/shardkv
#
# What it does: starts one server per binary (default flags: lock-free store, --workers = cores)
# on free 127.0.0.1 ports, preloads KEYS keys into each (wrk + lua/preload.lua), then runs every
# workload ROUNDS times against each binary, alternating which binary goes first in each round
# (round r runs them in order when r is odd and reversed when even). Each run is
# `wrk -t2 -c64 -dDURATION` over the preloaded keys:
#   get_hit   GET /get?key=K           (the original tool's read)
#   set_url   GET /set?key=K&value=V   (the original tool's write, 100-byte value)
#   set_rest  PUT /v1/kv/K             (REST write, 100-byte body)
# It prints, per workload and binary, every round's rps and server CPU time per request
# (utime + stime from /proc, which does not depend on how much of the cores wrk took), their
# medians, and the median ratios of each binary to the first one. A run with an unexpected status or no request fails.
#
# Options: --bin NAME=PATH (twice or more; the first is the reference), --rounds N (default 5),
# --duration SECONDS (default 5), --keys N (default 100000), --help.
set -euo pipefail
# shellcheck source=perf/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
perf_init compare

NAMES=()
BINS=()
ROUNDS=5
DURATION=5
KEYS=100000
while [ $# -gt 0 ]; do
    case "$1" in
        --bin)
            spec=${2:?--bin needs NAME=PATH}
            NAMES+=("${spec%%=*}")
            BINS+=("${spec#*=}")
            shift
            ;;
        --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
        --duration) DURATION=${2:?--duration needs seconds}; shift ;;
        --keys) KEYS=${2:?--keys needs a number}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
[ "${#BINS[@]}" -ge 2 ] || die "give at least two --bin NAME=PATH"
for bin in "${BINS[@]}"; do [ -x "$bin" ] || die "$bin is not an executable"; done
need_apt wrk wrk

OUT=$PERF_DIR/out/compare
mkdir -p "$OUT"
gen_lua "$OUT/gen" preload get_hit set_url set_rest
export PERF_KEYS=$KEYS PERF_THREADS=2

ADDRS=()
SERVER_PIDS=()
for i in "${!BINS[@]}"; do
    start_server "$OUT/${NAMES[$i]}.log" "${BINS[$i]}"
    ADDRS+=("$SERVER_ADDR")
    SERVER_PIDS+=("$SERVER_PID")
    url="http://$SERVER_ADDR"
    wrk_preload "$OUT/preload-${NAMES[$i]}.txt" "$url" "$KEYS" 0.2 -t2 -c64 -d120s -s "$OUT/gen/preload.lua"
    log "${NAMES[$i]}: $(dash_keys "$url") keys preloaded at $url"
done

field() { grep -o " $1=[0-9]*" <<<"$2" | cut -d= -f2; } # NAME LINE: a number of wrk's PERF line

declare -A RPS CPU
for round in $(seq "$ROUNDS"); do
    order=("${!BINS[@]}")
    if [ $((round % 2)) -eq 0 ]; then
        order=()
        for ((i = ${#BINS[@]} - 1; i >= 0; i--)); do order+=("$i"); done
    fi
    for workload in get_hit set_url set_rest; do
        for i in "${order[@]}"; do
            ticks=$(cpu_ticks "${SERVER_PIDS[$i]}")
            line=$(wrk -t2 -c64 -d"${DURATION}s" -s "$OUT/gen/$workload.lua" "http://${ADDRS[$i]}" |
                grep '^PERF ' || true)
            ticks=$(($(cpu_ticks "${SERVER_PIDS[$i]}") - ticks))
            [ -n "$line" ] || die "${NAMES[$i]} $workload: wrk printed no summary"
            requests=$(field requests "$line")
            duration=$(field duration_us "$line")
            errors=$(($(field status_errors "$line") + $(field bad "$line")))
            [ "$errors" -eq 0 ] || die "${NAMES[$i]} $workload: unexpected statuses ($line)"
            [ "$requests" -gt 0 ] || die "${NAMES[$i]} $workload: no request completed"
            rps=$((requests * 1000000 / duration))
            # Server CPU per request (ns), which does not depend on how much of the cores wrk took.
            cpu_ns=$((ticks * 1000000000 / CLK_TCK / requests))
            RPS[$workload,$i]="${RPS[$workload,$i]:-} $rps"
            CPU[$workload,$i]="${CPU[$workload,$i]:-} $cpu_ns"
            log "round $round $workload ${NAMES[$i]}: $rps rps, $cpu_ns ns of server CPU per request"
        done
    done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

echo
echo "| workload | binary | rps per round | median rps | median / ${NAMES[0]} | server CPU ns/request per round | median ns | median / ${NAMES[0]} |"
echo "|---|---|---|--:|--:|---|--:|--:|"
for workload in get_hit set_url set_rest; do
    reference=$(median <<<"${RPS[$workload,0]}")
    cpu_reference=$(median <<<"${CPU[$workload,0]}")
    for i in "${!BINS[@]}"; do
        m=$(median <<<"${RPS[$workload,$i]}")
        ratio=$(awk -v a="$m" -v b="$reference" 'BEGIN { printf "%.3f", a / b }')
        c=$(median <<<"${CPU[$workload,$i]}")
        cpu_ratio=$(awk -v a="$c" -v b="$cpu_reference" 'BEGIN { printf "%.3f", a / b }')
        echo "| $workload | ${NAMES[$i]} |${RPS[$workload,$i]} | $m | $ratio |${CPU[$workload,$i]} | $c | $cpu_ratio |"
    done
done
echo
echo "- command: \`bash perf/compare.sh $(for i in "${!BINS[@]}"; do printf -- '--bin %s=%s ' "${NAMES[$i]}" "${BINS[$i]}"; done)--rounds $ROUNDS --duration $DURATION --keys $KEYS\`"
echo "- machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr); wrk -t2 -c64 shares the cores with the servers"
