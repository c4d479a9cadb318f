#!/usr/bin/env bash
# Durability costs: SET throughput (seed /set form, 100-byte values, wrk -t2 -c64) with no
# persistence and with --data-dir at --fsync no / everysec / always, alternated over ROUNDS;
# then the start-up time of a data directory holding KEYS keys (load with /set, SIGTERM,
# restart, read the "loaded N keys in Xs" line). Traffic goes to 127.0.0.1 only.
#
#   bash perf/persistence.sh            # DUR=5 s per run, ROUNDS=2, KEYS=1000000
#   KEYS=10000000 bash perf/persistence.sh
set -euo pipefail
# shellcheck source=perf/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
perf_init persistence
cd "$PERF_ROOT"
DUR=${DUR:-5}
ROUNDS=${ROUNDS:-2}
KEYS=${KEYS:-1000000}
need_apt wrk wrk
need_apt curl curl
cargo_build --release --quiet --bin shardkv
BIN="$(target_dir)/release/shardkv"
WORK=$(mktemp -d)
CLEANUP_DIRS+=("$WORK")
START_TIMEOUT=60 # a restart loads the whole data directory before it listens

start() { # log-file args... ; sets PID and ADDR
    local log=$1
    shift
    start_server "$log" "$BIN" --log info "$@"
    PID=$SERVER_PID
    ADDR=$SERVER_ADDR
}

# No time bound: the server writes its log out before it exits.
stop() { stop_server "$PID" 0; }

gen_lua "$WORK" set_url preload
SET="$WORK/set_url.lua"
PRELOAD="$WORK/preload.lua"

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
PERF_KEYS=$KEYS PERF_THREADS=2 wrk_preload "$WORK/preload.log" "http://$ADDR" "$KEYS" 0.5 \
    -t2 -c64 -d600s -s "$PRELOAD"
stop
du -sh "$WORK/big"
start "$WORK/restart.log" --data-dir "$WORK/big" --initial-capacity "$KEYS"
grep -o 'loaded [0-9]* keys in [0-9.]*s' "$WORK/restart.log"
