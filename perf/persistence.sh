#!/usr/bin/env bash
# Durability costs: SET throughput (seed /set form, 100-byte values, wrk -t2 -c64) with no
# persistence and with --data-dir at --fsync no / everysec / always, alternated over ROUNDS;
# then the start-up time of a data directory holding KEYS keys (load with /set, SIGTERM,
# restart, read the "loaded N keys in Xs" line). Traffic goes to 127.0.0.1 only.
#
#   bash perf/persistence.sh            # DUR=5 s per run, ROUNDS=2, KEYS=1000000
#   KEYS=10000000 bash perf/persistence.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-5}
ROUNDS=${ROUNDS:-2}
KEYS=${KEYS:-1000000}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet
BIN=target/release/shardkv
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

start() { # log-file args... ; sets PID and ADDR
    local log=$1
    shift
    "$BIN" --listen 127.0.0.1:0 --log info "$@" >"$log" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    ADDR=""
    for _ in $(seq 1 600); do
        ADDR=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$log" | head -1 | sed 's|.*http://||') || true
        [ -n "$ADDR" ] && return
        sleep 0.1
    done
    echo "server did not start: $(cat "$log")" >&2
    exit 1
}

stop() { kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; }

lua() { cat perf/lua/common.lua "perf/lua/$1.lua" >"$WORK/$1.lua"; echo "$WORK/$1.lua"; }
SET=$(lua set_url)
PRELOAD=$(lua preload)

echo "| round | persistence | SET rps |"
echo "|---|---|--:|"
for round in $(seq 1 "$ROUNDS"); do
    for mode in none no everysec always; do
        args=()
        [ "$mode" = none ] || args=(--data-dir "$WORK/data-$mode-$round" --fsync "$mode")
        start "$WORK/server-$mode-$round.log" "${args[@]}"
        rps=$(PERF_KEYS=100000 wrk -t2 -c64 -d"${DUR}s" -s "$SET" "http://$ADDR" 2>&1 |
            awk '/Requests\/sec/ { print int($2) }')
        stop
        echo "| $round | $mode | $rps |"
    done
done

echo
echo "start-up with $KEYS keys (16-byte keys, 100-byte values, --fsync no while loading):"
start "$WORK/load.log" --data-dir "$WORK/big" --fsync no --initial-capacity "$KEYS"
PERF_KEYS=$KEYS PERF_THREADS=2 wrk -t2 -c64 -d600s -s "$PRELOAD" "http://$ADDR" >"$WORK/preload.log" 2>&1 &
wrk_pid=$!
while kill -0 "$wrk_pid" 2>/dev/null; do
    sleep 0.5
    keys=$(curl -s "http://$ADDR/dashboard" | grep -o '"keys":[0-9]*' | cut -d: -f2)
    [ "${keys:-0}" -ge "$KEYS" ] && { kill -INT "$wrk_pid"; break; }
done
wait "$wrk_pid" || true
stop
du -sh "$WORK/big"
start "$WORK/restart.log" --data-dir "$WORK/big" --initial-capacity "$KEYS"
grep -o 'loaded [0-9]* keys in [0-9.]*s' "$WORK/restart.log"
