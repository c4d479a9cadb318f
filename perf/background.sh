#!/usr/bin/env bash
# Background-work benchmark: does any GET or SET wait behind a snapshot, a re-sync or a failover?
#
#   bash perf/background.sh                  # build target/release/shardkv, 1M keys, 4 phases of 10 s
#   bash perf/background.sh --short          # smoke: 20k keys, 3 s phases
#   bash perf/background.sh --bin after=target/release/shardkv --bin before=../perf-before/target/release/shardkv
#
# For each binary (in the order given) it starts `shardkv --listen 127.0.0.1:0 --shards 2
# --replicas 1 --fsync everysec --data-dir TMP` (address read from its "listening on" line),
# preloads KEYS keys (key:%012d, 100-byte values) with wrk + perf/lua/background/preload_mset.lua
# (POST /v1/mset of 100 keys), takes one snapshot so every phase starts from a short log, then
# runs four phases. In each, two wrk processes run at once for DURATION s: GET
# (`wrk -t1 -c16 --timeout 10s`, perf/lua/get_hit.lua: /get of a random preloaded key) and SET
# (the same with perf/lua/set_url.lua: /set of a random preloaded key, 100-byte value), while
# a loop of admin requests runs beside them:
#   baseline   nothing in the background;
#   snapshots  POST /admin/snapshot, again and again (each copies both 500k-key shards);
#   resync     POST /admin/shards/0/fail, then /admin/shards/0/recover (recover re-syncs the
#              failed copy from the new primary: a copy of a 500k-key shard), again and again;
#   failover   fail shard 0, fail shard 1, recover 0, recover 1, again and again.
# The loop stops at the end of a whole cycle, so the next phase starts with every copy live;
# between phases the script waits (bounded) for replicas to catch up.
#
# Latencies are wrk's (perf/lua/common.lua's done(): p50, p99, p99.9 and max, in µs, closed
# loop, so a stall shows once per connection stuck behind it). A request that takes longer than
# wrk's 10 s timeout is not in wrk's histogram: it is counted in the "errors" column (timeouts,
# socket errors and non-2xx answers), and any error there means max is at least that long.
# wrk shares the machine's cores with the server, so the figures include scheduling delays.
#
# Output: a markdown table (phase x binary) on stdout and in perf/out/background/last.md, raw
# wrk output, admin timings and server logs in perf/out/background/. Exits non-zero on any
# error count or failed admin request only with --strict.
#
# Options:
#   --bin [LABEL=]PATH  a shardkv binary to measure (repeatable; default: build and use
#                       target/release/shardkv; the label defaults to the git revision of the
#                       checkout that holds PATH)
#   --no-build          do not run cargo build for the default binary
#   --short             smoke run: --keys 20000 --duration 3
#   --keys N            preloaded keys (default 1000000)
#   --duration S        seconds per phase (default 10)
#   --conns N           connections of each wrk (default 16)
#   --phases LIST       comma-separated subset of baseline,snapshots,resync,failover
#   --max-seconds S     abort the whole run after S seconds (default 295)
#   --strict            exit 1 if any request failed or any admin request did not answer 200
#   -h, --help          this text
set -euo pipefail
# shellcheck source=perf/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
perf_init background

ROOT=$PERF_ROOT
OUT="$PERF_DIR/out/background"

KEYS=1000000
DURATION=10
CONNS=16
BUILD=1
STRICT=0
MAX_SECONDS=295
PHASES="baseline,snapshots,resync,failover"
BINS=()
SHORT=0
KEYS_SET=0
DURATION_SET=0
ARGS_GIVEN="$*"

while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BINS+=("${2:?--bin needs a path}"); shift ;;
        --no-build) BUILD=0 ;;
        --short) SHORT=1 ;;
        --keys) KEYS=${2:?--keys needs a number}; KEYS_SET=1; shift ;;
        --duration) DURATION=${2:?--duration needs seconds}; DURATION_SET=1; shift ;;
        --conns) CONNS=${2:?--conns needs a number}; shift ;;
        --phases) PHASES=${2:?--phases needs a list}; shift ;;
        --max-seconds) MAX_SECONDS=${2:?--max-seconds needs seconds}; shift ;;
        --strict) STRICT=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "background.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$SHORT" = 1 ]; then
    [ "$KEYS_SET" = 1 ] || KEYS=20000
    [ "$DURATION_SET" = 1 ] || DURATION=3
fi
for n in "$KEYS" "$DURATION" "$CONNS" "$MAX_SECONDS"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "background.sh: '$n' is not a positive whole number" >&2; exit 2; }
done
IFS=, read -r -a PHASE_LIST <<<"$PHASES"
for p in "${PHASE_LIST[@]}"; do
    case "$p" in
        baseline | snapshots | resync | failover) ;;
        *) echo "background.sh: unknown phase '$p' (baseline, snapshots, resync, failover)" >&2; exit 2 ;;
    esac
done

WRK_TIMEOUT=10     # wrk --timeout, seconds
ADMIN_TIMEOUT=30   # curl --max-time for one admin request, seconds
SETTLE_SECONDS=30  # longest wait for replicas to catch up between phases
PRELOAD_BATCH=100  # keys per /v1/mset of the preload

# ---------------------------------------------------------------- tools
need_apt wrk wrk
need_apt curl curl

# ---------------------------------------------------------------- binaries
LABELS=()
PATHS=()
if [ "${#BINS[@]}" = 0 ]; then
    if [ "$BUILD" = 1 ]; then
        cargo_build --release --bin shardkv
    fi
    BINS=("$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo this-tree)=$(target_dir)/release/shardkv")
fi
for b in "${BINS[@]}"; do
    label=""
    path=$b
    if [[ $b == *=* ]]; then
        label=${b%%=*}
        path=${b#*=}
    fi
    [ -x "$path" ] || die "$path is not an executable (build it with cargo build --release --bin shardkv)"
    path=$(cd "$(dirname "$path")" && pwd)/$(basename "$path")
    if [ -z "$label" ]; then
        label=$(git -C "$(dirname "$path")" rev-parse --short HEAD 2>/dev/null || echo "$path")
    fi
    LABELS+=("$label")
    PATHS+=("$path")
done

rm -rf "$OUT"
gen_lua "$OUT/gen" get_hit set_url background/preload_mset

# ---------------------------------------------------------------- the time bound
# The servers, load generators and the watchdog this script starts are in PIDS (perf/lib.sh
# stops them at exit); the servers' data directories are in CLEANUP_DIRS.
trap 'log "stopped (signal or the --max-seconds bound of $MAX_SECONDS s)"; exit 130' INT TERM
DEADLINE=$((PERF_START + MAX_SECONDS))
(
    # One-second naps, so that nothing of it outlives the script by more than a second.
    while [ "$(date +%s)" -lt "$DEADLINE" ]; do sleep 1; done
    kill -TERM $$ 2>/dev/null
) &
PIDS+=("$!")

# ---------------------------------------------------------------- helpers
dashboard() { curl -fsS --max-time 5 "$1/dashboard"; }

# settled URL: every copy live, no failed copy, replicas and log caught up.
settled() {
    local d
    d=$(dashboard "$1") || return 1
    echo "$d" | grep -q '"failedCopies":\[[0-9]' && return 1
    echo "$d" | grep -o '"state":"[a-z]*"' | grep -qv '"state":"live"' && return 1
    echo "$d" | grep -o '"lagOps":[0-9]*' | grep -qv '"lagOps":0$' && return 1
    echo "$d" | grep -q '"queueDepth":[1-9]' && return 1
    return 0
}
wait_settled() { # url what
    local i
    for i in $(seq $((SETTLE_SECONDS * 10))); do
        settled "$1" && return 0
        sleep 0.1
    done
    log "not settled after $SETTLE_SECONDS s ($2); continuing. Dashboard: $(dashboard "$1" | head -c 600)"
}

# admin URL PATH LOGFILE: one POST, appends "PATH STATUS SECONDS" to LOGFILE; 0 if it answered 200.
admin() {
    local out
    out=$(curl -s -o /dev/null -X POST --max-time "$ADMIN_TIMEOUT" -w '%{http_code} %{time_total}' "$1/admin/$2" 2>/dev/null) || true
    [ -n "$out" ] || out="000 $ADMIN_TIMEOUT"
    echo "$2 $out" >>"$3"
    [ "${out%% *}" = 200 ]
}

# background_loop PHASE URL STOPFILE LOGFILE: the phase's admin work, whole cycles until STOPFILE.
background_loop() {
    local phase=$1 url=$2 stop=$3 logf=$4 ok
    : >"$logf"
    while [ ! -e "$stop" ]; do
        ok=1
        case "$phase" in
            baseline) return 0 ;;
            snapshots) admin "$url" snapshot "$logf" || ok=0 ;;
            resync)
                admin "$url" shards/0/fail "$logf" || ok=0
                admin "$url" shards/0/recover "$logf" || ok=0
                ;;
            failover)
                admin "$url" shards/0/fail "$logf" || ok=0
                admin "$url" shards/1/fail "$logf" || ok=0
                admin "$url" shards/0/recover "$logf" || ok=0
                admin "$url" shards/1/recover "$logf" || ok=0
                ;;
        esac
        # A refused request (say, no live replica yet) must not turn into a busy loop.
        [ "$ok" = 1 ] || sleep 0.2
    done
}

# Summarises an admin log: "N× snapshot (mean 0.81 s, max 1.02 s); ..., K not 200".
admin_summary() {
    awk '
        { op = $1; sub(/^shards\/[0-9]+\//, "", op); n[op]++; t[op] += $3; if ($3 > m[op]) m[op] = $3
          if ($2 != 200) bad++ }
        END {
            s = ""
            for (op in n) s = s sprintf("%s%d× %s (mean %.2f s, max %.2f s)", (s == "" ? "" : "; "), n[op], op, t[op] / n[op], m[op])
            if (s == "") s = "none"
            if (bad) s = s sprintf("; **%d not 200**", bad)
            print s
        }' "$1"
}

# ---------------------------------------------------------------- one binary
ROWS=()   # label|phase|get fields|set fields|errors|server cores|background
NOTES=()
ADMIN_BAD=0
REQ_BAD=0

run_binary() { # index
    local i=$1 label=${LABELS[$1]} bin=${PATHS[$1]}
    local data logf pid url
    data=$(mktemp -d "${TMPDIR:-/tmp}/shardkv-background.XXXXXX")
    CLEANUP_DIRS+=("$data")
    logf="$OUT/server-$i.log"
    log "$label: starting $bin"
    start_server "$logf" "$bin" --shards 2 --replicas 1 --fsync everysec --data-dir "$data" \
        --log warn,shardkv=info
    pid=$SERVER_PID
    url="http://$SERVER_ADDR"
    log "$label: pid $pid on $url, data dir $data"

    # Preload.
    local t0 t1
    t0=$(date +%s%N)
    PERF_KEYS=$KEYS PERF_THREADS=2 PERF_BATCH=$PRELOAD_BATCH \
        wrk_preload "$OUT/preload-$i.log" "$url" "$KEYS" 0.2 \
        -t2 -c8 -d120s --timeout "${WRK_TIMEOUT}s" -s "$OUT/gen/preload_mset.lua"
    t1=$(date +%s%N)
    local preload_s
    preload_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    wait_settled "$url" "after the preload"
    admin "$url" snapshot "$OUT/admin-$i-setup.log" || die "$label: the set-up snapshot failed (see $logf)"
    wait_settled "$url" "after the set-up snapshot"
    log "$label: preloaded $KEYS keys in $preload_s s; set-up snapshot took $(awk '{ printf "%.2f", $3 }' "$OUT/admin-$i-setup.log") s"
    NOTES+=("$label: \`$bin\`, preload of $KEYS keys in $preload_s s, set-up snapshot $(awk '{ printf "%.2f", $3 }' "$OUT/admin-$i-setup.log") s, load average before: $(cut -d' ' -f1-3 /proc/loadavg)")

    local phase
    for phase in "${PHASE_LIST[@]}"; do
        local stop="$OUT/stop-$i-$phase" alog="$OUT/admin-$i-$phase.log" bpid gpid spid c0 c1 p0 p1
        rm -f "$stop"
        c0=$(cpu_ticks "$pid")
        p0=$(date +%s%N)
        background_loop "$phase" "$url" "$stop" "$alog" &
        bpid=$!
        PIDS+=("$bpid")
        PERF_KEYS=$KEYS PERF_THREADS=1 \
            wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout "${WRK_TIMEOUT}s" -s "$OUT/gen/get_hit.lua" "$url" >"$OUT/wrk-$i-$phase-get.log" 2>&1 &
        gpid=$!
        PIDS+=("$gpid")
        PERF_KEYS=$KEYS PERF_THREADS=1 \
            wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout "${WRK_TIMEOUT}s" -s "$OUT/gen/set_url.lua" "$url" >"$OUT/wrk-$i-$phase-set.log" 2>&1 &
        spid=$!
        PIDS+=("$spid")
        wait "$gpid" || die "$label/$phase: wrk (GET) failed (see $OUT/wrk-$i-$phase-get.log)"
        forget "$gpid"
        wait "$spid" || die "$label/$phase: wrk (SET) failed (see $OUT/wrk-$i-$phase-set.log)"
        forget "$spid"
        p1=$(date +%s%N)
        c1=$(cpu_ticks "$pid")
        touch "$stop"
        wait "$bpid" || true
        forget "$bpid"
        wait_settled "$url" "after $phase"

        local get set fields errs cores bg
        get=$(grep '^PERF ' "$OUT/wrk-$i-$phase-get.log" | tail -1) || die "$label/$phase: no PERF line from wrk (GET)"
        set=$(grep '^PERF ' "$OUT/wrk-$i-$phase-set.log" | tail -1) || die "$label/$phase: no PERF line from wrk (SET)"
        fields=""
        errs=""
        local line name
        for line in "$get" "$set"; do
            [ "$line" = "$get" ] && name=GET || name=SET
            # shellcheck disable=SC2034 # all set by the eval; bad and mean are not reported here
            local requests duration_us status_errors bad connect read write timeout p50 p99 p999 mean max
            eval "$(echo "${line#PERF }" | tr ' ' '\n' | grep -E '^(requests|duration_us|status_errors|bad|connect|read|write|timeout|p50|p99|p999|mean|max)=')"
            fields+=$(awk -v n="$requests" -v d="$duration_us" -v a="$p50" -v b="$p99" -v c="$p999" -v m="$max" \
                'BEGIN { printf "%.2f|%.2f|%.2f|%.1f|%d|", a / 1000, b / 1000, c / 1000, m / 1000, n / (d / 1e6) }')
            local e=$((status_errors + connect + read + write + timeout))
            if [ "$e" -gt 0 ]; then
                REQ_BAD=$((REQ_BAD + e))
                errs+="${errs:+, }$name: ${status_errors} non-2xx, ${timeout} timeouts, $((connect + read + write)) socket"
            fi
        done
        [ -n "$errs" ] || errs=0
        cores=$(awk -v t="$((c1 - c0))" -v hz="$CLK_TCK" -v a="$p0" -v b="$p1" 'BEGIN { printf "%.2f", (t / hz) / ((b - a) / 1e9) }')
        bg=$(admin_summary "$alog")
        grep -qv ' 200 ' "$alog" && ADMIN_BAD=$((ADMIN_BAD + 1))
        ROWS+=("$phase|$label|$fields$errs|$cores|$bg")
        log "$label/$phase: GET p50/p99/p99.9/max ms, rps = $(echo "$fields" | cut -d'|' -f1-5)  SET = $(echo "$fields" | cut -d'|' -f6-10)  errors: $errs  server cores: $cores  background: $bg"
    done
    NOTES[${#NOTES[@]} - 1]+=", after: $(cut -d' ' -f1-3 /proc/loadavg)"

    stop_server "$pid" 10
    rm -rf "$data"
}

log "load average (1, 5, 15 min) before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
for i in "${!PATHS[@]}"; do
    run_binary "$i"
done

# ---------------------------------------------------------------- report
TABLE="$OUT/last.md"
{
    echo "| phase | binary | GET p50 | GET p99 | GET p99.9 | GET max | GET rps | SET p50 | SET p99 | SET p99.9 | SET max | SET rps | errors | server cores | background work in the phase |"
    echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|---|"
    for p in "${PHASE_LIST[@]}"; do
        for r in "${ROWS[@]}"; do
            [ "${r%%|*}" = "$p" ] && echo "| ${r//|/ | } |"
        done
    done
    echo
    echo "Latencies in ms (wrk, closed loop: \`wrk -t1 -c$CONNS -d${DURATION}s --timeout ${WRK_TIMEOUT}s\` for GET and for SET at once), $KEYS keys, \`--shards 2 --replicas 1 --fsync everysec --data-dir\`; command: \`bash perf/background.sh $ARGS_GIVEN\`."
    for n in "${NOTES[@]}"; do
        echo "- $n"
    done
    [ "$SHORT" = 1 ] && echo "- --short run: a smoke check that every phase runs, not a measurement."
} >"$TABLE"
cat "$TABLE"
log "finished in $(($(date +%s) - PERF_START)) s; raw output in $OUT"

if [ "$STRICT" = 1 ] && { [ "$REQ_BAD" -gt 0 ] || [ "$ADMIN_BAD" -gt 0 ]; }; then
    log "--strict: $REQ_BAD failed requests, $ADMIN_BAD phases with an admin request that did not answer 200"
    exit 1
fi
