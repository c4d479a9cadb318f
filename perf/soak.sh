#!/usr/bin/env bash
# shardkv soak test. From a clean checkout:
#
#   bash perf/soak.sh            # 10 minutes of mixed load (about 11 minutes with the build)
#   bash perf/soak.sh --short    # 60 s: the mode for CI
#
# What it does: builds the release binary, starts ONE server on a free 127.0.0.1 port with
# `--replicas 1 --data-dir <tmp> --fsync everysec`, and runs a load generator (Python stdlib,
# perf/soak.py: processes x threads, each with one keep-alive http.client connection) for
# --duration seconds over --keys keys (default 50,000), partitioned so every key has exactly one
# writer. The mix: PUT without TTL 28%, PUT with a TTL of 1-5 s 20%, /set (seed route, half with
# TTL) 5%, GET /v1/kv 28%, GET /get 5%, DELETE 10%, /v1/mset of 10 keys 2%, /v1/mget of 20 keys
# 2%. Every answer is checked while the load runs: its status (404 on a read or a delete of an
# absent key is expected; anything else that is not 2xx is an error) and its content against the
# writer's own record of the key (read-your-writes: a key written without TTL must read back
# exactly; a TTL key must read back exactly, or be gone once its TTL can have passed, and must be
# gone 250 ms after it surely passed).
#
# Every 10 s it samples, into perf/out/soak-<date>.csv (gitignored): the server's VmRSS (from
# /proc/PID/status), rps over the interval, ops/errors/wrong reads so far, keys and TTL keys,
# replica lag, open connections, and the data directory's size. A plot goes to
# perf/out/soak-<date>.png when matplotlib is importable (perf/soak_plot.py), else it says
# "no plot: matplotlib missing". The summary is printed and saved as perf/out/soak-<date>.txt,
# the server's log as perf/out/soak-<date>.server.log.
#
# It exits 1 (FAIL) if any of these holds:
#   1. errors: any unexpected status (5xx, a 4xx other than the expected 404s) or a failed
#      connection, or any wrong read (a value that is not the last acknowledged one);
#   2. RSS growth after warm-up. Warm-up is the first third of the run, at least 30 s; R0 = the
#      RSS sampled at its end. FAIL if the least-squares slope of RSS over the samples from R0 to
#      the end exceeds --max-slope MiB/min, or if the last sample exceeds --max-ratio x R0
#      (default 1.25). --max-slope defaults to 2 MiB/min for runs of 300 s or more and to
#      10 MiB/min for shorter ones: the allocator and the maps settle for a minute or two (in
#      the 10-minute run of 2026-11-25 RSS went 119 -> 153 MiB in the first 40 s, wandered
#      152-158 MiB until 200 s, then +0.4 MiB/min), so a 30 s window cannot tell a small leak
#      from settling; 10 MiB/min still catches leaking a few dozen bytes per request;
#   3. the replica differs from the primary. After the load stops it waits until /dashboard
#      shows every copy live with lagOps 0, reads every key from the primary (mget, in batches)
#      and compares with the writers' records, fails over every shard (POST
#      /admin/shards/{i}/fail promotes the replica), and reads every key again: keys without TTL
#      and absent keys must match exactly (and match the primary's answer); TTL keys must hold
#      their last value or be gone, and must be gone if their TTL surely passed;
#   4. (also checked) the server does not stop cleanly on SIGTERM, or a restart from the same
#      --data-dir does not restore every key without TTL exactly (and keeps no deleted key).
#
# Why Python and not wrk: the replica and restart checks need the exact last acknowledged
# write of every key, and the load itself is checked response by response against it; wrk's Lua
# could do the status checks, but not keep and hand back per-key state across its threads. The
# rps here is the generator's (Python, a few thousand per second on 2 cores), enough to turn the
# 50k keys over many times; perf/run.sh measures throughput.
#
# Options: --short, --duration SECONDS (at least 60), --keys N, --procs N (2), --threads N (4 per process),
# --max-slope MIB_PER_MIN, --max-ratio X, --no-build, --help.
set -euo pipefail
# shellcheck source=perf/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
perf_init soak

ROOT=$PERF_ROOT
cd "$ROOT"
OUT="$ROOT/perf/out"
mkdir -p "$OUT"

DURATION=600
KEYS=50000
PROCS=2
THREADS=4
MAX_SLOPE=""
MAX_RATIO=1.25
BUILD=1

while [ $# -gt 0 ]; do
    case "$1" in
        --short) DURATION=60 ;;
        --duration) DURATION=${2:?--duration needs seconds}; shift ;;
        --keys) KEYS=${2:?--keys needs a number}; shift ;;
        --procs) PROCS=${2:?--procs needs a number}; shift ;;
        --threads) THREADS=${2:?--threads needs a number}; shift ;;
        --max-slope) MAX_SLOPE=${2:?--max-slope needs MiB/min}; shift ;;
        --max-ratio) MAX_RATIO=${2:?--max-ratio needs a ratio}; shift ;;
        --no-build) BUILD=0 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "soak.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$DURATION" -lt 60 ]; then
    echo "soak.sh: --duration must be at least 60 s (30 s of warm-up, then 4 samples)" >&2
    exit 2
fi
if [ -z "$MAX_SLOPE" ]; then
    if [ "$DURATION" -ge 300 ]; then MAX_SLOPE=2; else MAX_SLOPE=10; fi
fi

STAMP=$(date +%Y%m%d-%H%M%S)
CSV="$OUT/soak-$STAMP.csv"
PNG="$OUT/soak-$STAMP.png"
TXT="$OUT/soak-$STAMP.txt"
SERVER_LOG="$OUT/soak-$STAMP.server.log"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/shardkv-soak.XXXXXX")
CLEANUP_DIRS+=("$WORK")
STOP_TIMEOUT=10
BIN="$(target_dir)/release/shardkv"

if [ "$BUILD" = 1 ]; then
    cargo_build --release --bin shardkv
fi
[ -x "$BIN" ] || { echo "soak.sh: $BIN missing (drop --no-build)" >&2; exit 2; }

# Starts the server on a free port (its log appended to SERVER_LOG); sets SERVER_PID and ADDR.
start() {
    start_server "$SERVER_LOG" "$BIN" --replicas 1 --data-dir "$WORK/data" --fsync everysec --log info
    ADDR=$SERVER_ADDR
}

: >"$TXT"
: >"$SERVER_LOG"
start
echo "== server pid $SERVER_PID on $ADDR (--replicas 1 --data-dir $WORK/data --fsync everysec)"
echo "== soak for ${DURATION}s: $KEYS keys, $PROCS x $THREADS writers; samples -> ${CSV#"$ROOT/"}"
{
    echo "shardkv soak $STAMP, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (+ uncommitted src changes)')"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); server: --replicas 1 --fsync everysec"
} >>"$TXT"
RC=0
python3 "$PERF_DIR/soak.py" run --addr "$ADDR" --pid "$SERVER_PID" --duration "$DURATION" \
    --keys "$KEYS" --procs "$PROCS" --threads "$THREADS" --max-slope "$MAX_SLOPE" \
    --max-ratio "$MAX_RATIO" --csv "$CSV" --work "$WORK" --data-dir "$WORK/data" \
    --summary "$TXT" || RC=1

# 4. A clean stop on SIGTERM, then a restart from the same data directory.
if kill -0 "$SERVER_PID" 2>/dev/null; then
    t0=$(date +%s%N)
    kill -TERM "$SERVER_PID"
    if wait "$SERVER_PID"; then
        echo "SIGTERM: clean exit in $(( ($(date +%s%N) - t0) / 1000000 )) ms" | tee -a "$TXT"
    else
        echo "SIGTERM: exit status $? (FAIL)" | tee -a "$TXT"
        RC=1
    fi
    forget "$SERVER_PID"
    t0=$(date +%s%N)
    start
    echo "restart: listening again after $(( ($(date +%s%N) - t0) / 1000000 )) ms ($(du -sh "$WORK/data" | cut -f1) on disk)" | tee -a "$TXT"
    python3 "$PERF_DIR/soak.py" verify-restart --addr "$ADDR" --work "$WORK" --summary "$TXT" || RC=1
else
    echo "the server is not running at the end of the soak (FAIL)" | tee -a "$TXT"
    RC=1
fi
if grep -q "panicked" "$SERVER_LOG"; then
    echo "the server logged a panic (FAIL):" | tee -a "$TXT"
    grep -m5 "panicked" "$SERVER_LOG" | tee -a "$TXT"
    RC=1
fi

if python3 -c "import matplotlib" 2>/dev/null; then
    python3 "$ROOT/perf/soak_plot.py" "$CSV" "$PNG" "$DURATION" && echo "plot: ${PNG#"$ROOT/"}"
else
    echo "no plot: matplotlib missing"
fi
echo "csv: ${CSV#"$ROOT/"}  summary: ${TXT#"$ROOT/"}  server log: ${SERVER_LOG#"$ROOT/"}"
if [ "$RC" = 0 ]; then echo "SOAK PASS"; else echo "SOAK FAIL"; fi
exit "$RC"
