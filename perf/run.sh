#!/usr/bin/env bash
# shardkv's load suite. From a clean checkout:
#
#   bash perf/run.sh            # the standard suite (about 5 minutes after the build), prints tables
#   bash perf/run.sh --record   # the same, and records the run: it becomes the latest run shown in
#                               # perf/RESULTS.md, and joins perf/history/<date>-load-suite.md (newest first)
#   bash perf/run.sh --smoke    # CI: every workload for 2 s over a 10k-key preload, no oha;
#                               # exits non-zero if any workload saw an unexpected status or 0 rps
#
# What it does: builds the server and two HTTP ceilings with the fat-LTO `dist` profile: A, a
# bare hyper server that shares none of shardkv's code (examples/bare.rs), and B, shardkv's own
# connection layer with a fixed answer instead of the store (examples/ceiling.rs); B/A is the
# cost of shardkv's connection layer. It installs wrk (apt, as root) and, for the latency rows only, oha (cargo install),
# starts one server per configuration (lockfree and rwlock, plus --replicas 1 when the binary
# has that flag) and both ceilings on free 127.0.0.1 ports, preloads keys, runs every workload with
# `wrk -t2 -c64` against every configuration in alternating order (the ceilings join the
# alternation of GET hit, the request they answer), stops everything it started, and prints
# markdown tables; then perf/memory.sh's comparison with redis-server (standard mode only). Raw output goes to
# perf/out/ (gitignored): last.md, last.csv (read by perf/plot.py), logs/.
#
# Server CPU is utime+stime of the server process from /proc/PID/stat over each wrk run, so
# "rps per server core" does not depend on how much of the 2 cores wrk took.
#
# Options: --smoke, --record, --duration SECONDS (per workload), --keys N (preload size),
# --repeat N (run every workload N times, alternating configurations, and report each
# configuration's median run), --no-build (use the binaries already in target/dist), --help.
set -euo pipefail
# shellcheck source=perf/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
perf_init perf

ROOT=$PERF_ROOT
cd "$ROOT"
PERF=$PERF_DIR
OUT="$PERF/out"
LUA="$PERF/lua"
mkdir -p "$OUT"

MODE=standard
RECORD=0
BUILD=1
DURATION=""
KEYS=""
REPEAT=1
ARGS_GIVEN="$*"

while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) MODE=smoke ;;
        --record) RECORD=1 ;;
        --no-build) BUILD=0 ;;
        --duration) DURATION=${2:?--duration needs seconds}; shift ;;
        --keys) KEYS=${2:?--keys needs a number}; shift ;;
        --repeat) REPEAT=${2:?--repeat needs a number}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$MODE" = smoke ]; then
    DURATION=${DURATION:-2}
    KEYS=${KEYS:-10000}
    LATENCY=0
    if [ "$RECORD" = 1 ]; then
        echo "run.sh: --record is for the standard suite, not --smoke" >&2
        exit 2
    fi
else
    DURATION=${DURATION:-5}
    KEYS=${KEYS:-1000000}
    LATENCY=1
fi
WRK_THREADS=2
WRK_CONNS=64
LAT_SECONDS=8

# ---------------------------------------------------------------- tools
need_apt wrk wrk
need_apt curl curl

export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
OHA_NOTE=""
if [ "$LATENCY" = 1 ] && ! command -v oha >/dev/null 2>&1; then
    log "installing oha (cargo install --locked oha; this compiles for several minutes)"
    if ! cargo install --locked oha >"$OUT/oha-install.log" 2>&1; then
        OHA_NOTE="oha could not be installed (cargo install --locked oha failed; see perf/out/oha-install.log): latency rows skipped"
    fi
fi
if [ "$LATENCY" = 1 ] && ! command -v oha >/dev/null 2>&1; then
    LATENCY=0
    OHA_NOTE=${OHA_NOTE:-"oha is not available: latency rows skipped"}
    log "$OHA_NOTE"
fi

# ---------------------------------------------------------------- build
BIN="$(target_dir)/dist/shardkv"
CEILING="$(target_dir)/dist/examples/ceiling"
BARE="$(target_dir)/dist/examples/bare"
if [ "$BUILD" = 1 ]; then
    cargo_build --profile dist --bin shardkv --example ceiling --example bare
fi
[ -x "$BIN" ] || die "$BIN not built"
[ -x "$CEILING" ] || die "$CEILING not built"
[ -x "$BARE" ] || die "$BARE not built"

rm -rf "$OUT/logs" "$OUT/gen"
mkdir -p "$OUT/logs" "$OUT/gen"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$RECORD" = 1 ] && awk -v l="${LOAD_BEFORE%% *}" 'BEGIN { exit !(l > 1.5) }'; then
    # A busy machine (the build that just ran, or someone else's) skews every figure: wait once.
    log "load average $LOAD_BEFORE is above 1.5: waiting 90 s before recording"
    sleep 90
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
fi
log "load average before the suite (1, 5, 15 min): $LOAD_BEFORE"

SCRIPTS=()
for script in "$LUA"/*.lua; do
    name=$(basename "$script" .lua)
    [ "$name" = common ] || SCRIPTS+=("$name")
done
gen_lua "$OUT/gen" "${SCRIPTS[@]}"

NPROC=$(nproc)

# ---------------------------------------------------------------- servers
# start NAME BINARY ARGS... : starts it on a free port; sets PID_<NAME> and URL_<NAME>.
start() {
    local name=$1 bin=$2
    shift 2
    start_server "$OUT/logs/server-$name.log" "$bin" "$@"
    printf -v "PID_$name" '%s' "$SERVER_PID"
    printf -v "URL_$name" '%s' "http://$SERVER_ADDR"
    log "$name: pid $SERVER_PID on http://$SERVER_ADDR ($*)"
}
# CPU seconds (user+sys) used so far by the finished children of this shell (the load
# generators), read around each run to report how much of the machine they took. Sets
# CHILD_CPU; `times` must run in this shell, not in a $(...) subshell, to see its children.
child_cpu() {
    times >"$OUT/gen/times"
    CHILD_CPU=$(tail -1 "$OUT/gen/times" | awk '{
        t = 0
        for (i = 1; i <= NF; i++) { split($i, ms, "m"); sub("s", "", ms[2]); t += ms[1] * 60 + ms[2] }
        printf "%.3f", t }')
}

# ---------------------------------------------------------------- configurations
if "$BIN" --help 2>/dev/null | grep -q -- '--replicas'; then
    REPLICAS=1
    CONFIGS=(lockfree rwlock lockfree_r1 rwlock_r1)
    REPLICAS_NOTE=""
else
    REPLICAS=0
    CONFIGS=(lockfree rwlock)
    REPLICAS_NOTE="this build of shardkv has no --replicas flag: the --replicas 1 rows were skipped"
    log "$REPLICAS_NOTE"
fi
config_args() {
    case "$1" in
        lockfree) echo "--store lockfree" ;;
        rwlock) echo "--store rwlock" ;;
        lockfree_r1) echo "--store lockfree --replicas 1" ;;
        rwlock_r1) echo "--store rwlock --replicas 1" ;;
    esac
    if [ "$REPLICAS" = 1 ] && [[ $1 != *_r1 ]]; then echo "--replicas 0"; fi
}
config_label() {
    case "$1" in
        ceiling) echo "ceiling B" ;;
        bare) echo "ceiling A" ;;
        *_r1) echo "${1%_r1} r1" ;;
        *) if [ "$REPLICAS" = 1 ]; then echo "$1 r0"; else echo "$1"; fi ;;
    esac
}

start bare "$BARE"
start ceiling "$CEILING"
for c in "${CONFIGS[@]}"; do
    # shellcheck disable=SC2046
    start "$c" "$BIN" $(config_args "$c") --log warn,shardkv=info
done

# ---------------------------------------------------------------- preload and memory
MEM_ROWS=()
preload() { # config
    local c=$1 pid url empty_kb after_kb t0 t1 logf
    pid=$(eval echo "\$PID_$c")
    url=$(eval echo "\$URL_$c")
    logf="$OUT/logs/preload-$c.log"
    empty_kb=$(status_kb "$pid" VmRSS)
    t0=$(date +%s%N)
    PERF_KEYS=$KEYS PERF_THREADS=$WRK_THREADS wrk_preload "$logf" "$url" "$KEYS" 0.2 \
        -t"$WRK_THREADS" -c"$WRK_CONNS" -d120s -s "$OUT/gen/preload.lua"
    t1=$(date +%s%N)
    sleep 1
    after_kb=$(status_kb "$pid" VmRSS)
    local secs rate per_key
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    rate=$(awk -v k="$KEYS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", k / ((b - a) / 1e9) }')
    per_key=$(awk -v e="$empty_kb" -v f="$after_kb" -v k="$KEYS" 'BEGIN { printf "%.1f", (f - e) * 1024 / k }')
    log "preloaded $c: $KEYS keys in $secs s ($rate keys/s); RSS ${empty_kb} kB -> ${after_kb} kB = $per_key B/key"
    MEM_ROWS+=("$(config_label "$c"),$KEYS,$empty_kb,$after_kb,$per_key,$secs,$rate")
}
for c in "${CONFIGS[@]}"; do
    preload "$c"
done

# ---------------------------------------------------------------- one wrk run
ROWS=()
FAILED=()
# bench CONFIG WORKLOAD : runs the workload's script against the config's server, appends a row.
bench() {
    local c=$1 w=$2 pid url script logf c0 c1 g0 g1 line
    pid=$(eval echo "\$PID_$c")
    url=$(eval echo "\$URL_$c")
    script=$w
    if [ "$c" = ceiling ] || [ "$c" = bare ]; then script=ceiling; fi
    logf="$OUT/logs/$(printf '%02d' "${#ROWS[@]}")-$w-$c.log"
    c0=$(cpu_ticks "$pid")
    child_cpu
    g0=$CHILD_CPU
    PERF_KEYS=$KEYS PERF_THREADS=$WRK_THREADS \
        wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DURATION}s" --latency -s "$OUT/gen/$script.lua" "$url" >"$logf" 2>&1 ||
        die "wrk failed on $w/$c (see $logf)"
    c1=$(cpu_ticks "$pid")
    child_cpu
    g1=$CHILD_CPU
    line=$(grep '^PERF ' "$logf" | tail -1) || die "no PERF line from wrk on $w/$c (see $logf)"
    local requests duration_us status_errors bad connect read write timeout p50 p99 p999
    # shellcheck disable=SC2086
    eval "$(echo "${line#PERF }" | tr ' ' '\n' | grep -E '^(requests|duration_us|status_errors|bad|connect|read|write|timeout|p50|p99|p999)=')"
    local non2xx=$status_errors
    [ "$w" = get_miss ] && non2xx=$bad # 404 is the right answer there; bad counts anything else
    local sock=$((connect + read + write + timeout))
    local row
    row=$(awk -v c="$(config_label "$c")" -v w="$w" -v n="$requests" -v d="$duration_us" \
        -v t="$((c1 - c0))" -v hz="$CLK_TCK" -v p50="$p50" -v p99="$p99" -v p999="$p999" \
        -v rss="$(status_kb "$pid" VmHWM)" -v e="$non2xx" -v s="$sock" -v g="$g0" -v h="$g1" 'BEGIN {
            secs = d / 1e6; cpu = t / hz
            rps = n / secs; cores = cpu / secs; per = (cpu > 0) ? n / cpu : 0
            printf "%s,%s,%d,%d,%d,%d,%.2f,%d,%d,%d,%d,%.2f", c, w, rps, p50, p99, p999, cores, per, rss, e, s, (h - g) / secs
        }')
    ROWS+=("$row")
    log "$(echo "$row" | awk -F, '{ printf "%-12s %-9s %8d rps  p50 %6.2f ms  p99 %6.2f ms  p99.9 %6.2f ms  %.2f cores  %7d rps/core  RSS %d MiB  non-2xx %d  sock-err %d  wrk %.2f cores", $1, $2, $3, $4/1000, $5/1000, $6/1000, $7, $8, $9/1024, $10, $11, $12 }')"
    if [ "$requests" -eq 0 ] || [ "$non2xx" -ne 0 ]; then
        FAILED+=("$w on $(config_label "$c"): $requests requests, $non2xx unexpected statuses")
    fi
}

# ---------------------------------------------------------------- the suite
# The bare ceiling's saturation rps; its first run sets the fixed rate of the latency rows.
bench bare ceiling
ROWS_FIRST=${ROWS[0]}
bench ceiling ceiling

LAT_ROWS=()
latency() { # config fraction: offered rate = the bare ceiling's first saturation rps × fraction
    local c=$1 div=$2 pid url rate digits regex logf
    pid=$(eval echo "\$PID_$c")
    url=$(eval echo "\$URL_$c")
    rate=$(echo "${ROWS[0]}" | awk -F, -v f="$div" '{ printf "%d", $3 * f }')
    digits=$(awk -v k="$KEYS" 'BEGIN { d = 0; while (10 ^ (d + 1) <= k) d++; print d }')
    # oha draws each URL from this regex: a random key among the first 10^digits preloaded ones.
    local zeros
    zeros=$(printf '%0*d' $((12 - digits)) 0)
    # oha's regex engine mishandles "\." (it produced other hosts): escape with classes instead.
    regex="${url//./[.]}/get[?]key=key:${zeros}[0-9]{$digits}"
    local sample
    sample=$(oha -n 1 --no-tui --rand-regex-url --dump-urls 3 "$regex" 2>&1 || true)
    if [ -z "$sample" ] || echo "$sample" | grep -qv "^$url/get?key=key:[0-9]\{12\}\$"; then
        log "oha's --rand-regex-url makes unexpected URLs from $regex: latency row skipped"
        log "$sample"
        return 0
    fi
    logf="$OUT/logs/latency-$c-$rate.log"
    local c0 c1 g0 g1
    c0=$(cpu_ticks "$pid")
    child_cpu
    g0=$CHILD_CPU
    if ! oha -z "${LAT_SECONDS}s" -c "$WRK_CONNS" -q "$rate" --latency-correction --no-tui \
        --output-format json --rand-regex-url "$regex" >"$logf" 2>"$logf.err"; then
        log "oha failed on $c (see $logf.err): latency row skipped"
        return 0
    fi
    c1=$(cpu_ticks "$pid")
    child_cpu
    g1=$CHILD_CPU
    local row
    row=$(python3 - "$logf" "$(config_label "$c")" "$rate" "$((c1 - c0))" "$CLK_TCK" "$LAT_SECONDS" "$g0" "$g1" <<'PY'
import json, sys
path, label, rate, ticks, hz, secs, g0, g1 = sys.argv[1:]
d = json.load(open(path))
s = d["summary"]
p = {k: v for k, v in d["latencyPercentiles"].items()}
codes = d.get("statusCodeDistribution", {})
ok = sum(v for k, v in codes.items() if k.startswith("2"))
bad = sum(v for k, v in codes.items() if not k.startswith("2"))
errs = sum(d.get("errorDistribution", {}).values())
achieved = s["requestsPerSec"]
print("%s,%d,%.0f,%.1f,%.1f,%.1f,%.2f,%d,%d,%.2f" % (
    label, int(rate), achieved, p["p50"] * 1e6, p["p99"] * 1e6, p["p99.9"] * 1e6,
    int(ticks) / int(hz) / float(secs), bad, errs, (float(g1) - float(g0)) / float(secs)))
PY
    ) || { log "could not read oha's output for $c (see $logf): latency row skipped"; return 0; }
    LAT_ROWS+=("$row")
    log "latency $row"
}
if [ "$LATENCY" = 1 ]; then
    if command -v python3 >/dev/null 2>&1; then
        # 80% of the bare ceiling's rate (where p99 is judged against the bare server's), then
        # half of it: on 2 shared cores the load generator itself needs much of the machine.
        for div in 0.8 0.5; do
            latency bare "$div"
            latency ceiling "$div"
            for c in "${CONFIGS[@]}"; do
                [[ $c == *_r1 ]] && continue
                latency "$c" "$div"
            done
        done
    else
        OHA_NOTE="python3 (to read oha's JSON) is missing: latency rows skipped"
        log "$OHA_NOTE"
    fi
fi

# set_ttl is last (all its repeats too): it gives the preloaded keys a 60 s TTL.
WORKLOADS=(get_hit get_miss set_url set_rest mix mget mset set_ttl)
order=("${CONFIGS[@]}")
pass() { # workloads...
    local w c
    for w in "$@"; do
        for c in "${order[@]}"; do
            bench "$c" "$w"
        done
        # The ceilings answer GET hit's request: they join its alternation, A then B or B then A.
        if [ "$w" = get_hit ]; then
            if [ "${order[0]}" = "${CONFIGS[0]}" ]; then
                bench bare ceiling
                bench ceiling ceiling
            else
                bench ceiling ceiling
                bench bare ceiling
            fi
        fi
        # Alternate the order of the configurations from one run to the next (ABBA...).
        mapfile -t order < <(printf '%s\n' "${order[@]}" | tac)
    done
}
for _ in $(seq "$REPEAT"); do
    pass "${WORKLOADS[@]:0:${#WORKLOADS[@]}-1}"
done
for _ in $(seq "$REPEAT"); do
    pass set_ttl
done

bench ceiling ceiling
bench bare ceiling

# Every run as measured; then one row per configuration and workload: its median run (by rps),
# with the number of runs and the lowest and highest rps appended (the ceilings too).
printf '%s\n' "config,workload,rps,p50_us,p99_us,p999_us,server_cores,rps_per_core,peak_rss_kb,non2xx,socket_errors,wrk_cores" >"$OUT/last-runs.csv"
printf '%s\n' "${ROWS[@]}" >>"$OUT/last-runs.csv"
mapfile -t ROWS < <(printf '%s\n' "${ROWS[@]}" | awk -F, '
    {
        k = $1 "," $2
        if (!(k in cnt)) { key[++m] = k }
        n = ++cnt[k]; row[k, n] = $0; rps[k, n] = $3 + 0
    }
    END {
        for (i = 1; i <= m; i++) {
            k = key[i]; n = cnt[k]
            for (a = 1; a <= n; a++) idx[a] = a
            for (a = 2; a <= n; a++)
                for (b = a; b > 1 && rps[k, idx[b]] < rps[k, idx[b - 1]]; b--) { t = idx[b]; idx[b] = idx[b - 1]; idx[b - 1] = t }
            print row[k, idx[int((n + 1) / 2)]] "," n "," rps[k, idx[1]] "," rps[k, idx[n]]
        }
    }')

# ---------------------------------------------------------------- tables
CSV="$OUT/last.csv"
echo "config,workload,rps,p50_us,p99_us,p999_us,server_cores,rps_per_core,peak_rss_kb,non2xx,socket_errors,wrk_cores,runs,rps_min,rps_max" >"$CSV"
printf '%s\n' "${ROWS[@]}" >>"$CSV"

# The ceiling references: each one's median run (A, the bare server, is the one ratios are taken to).
read -r CEIL_RPS CEIL_PER < <(printf '%s\n' "${ROWS[@]}" | awk -F, '$1 == "ceiling A" { printf "%d %d\n", $3, $8 }')
read -r CEILB_RPS CEILB_PER < <(printf '%s\n' "${ROWS[@]}" | awk -F, '$1 == "ceiling B" { printf "%d %d\n", $3, $8 }')

describe() {
    case "$1" in
        ceiling) echo "ceiling: fixed 2-byte body (GET hit's request)" ;;
        get_hit) echo "GET hit /get" ;;
        get_miss) echo "GET miss /get (404)" ;;
        set_url) echo "SET /set?key&value" ;;
        set_rest) echo "SET PUT /v1/kv/{key}" ;;
        mix) echo "90/10 get/set mix" ;;
        mget) echo "mget, 10 keys" ;;
        mset) echo "mset, 10 items" ;;
        set_ttl) echo "SET /set ttl=60s" ;;
        *) echo "$1" ;;
    esac
}

TABLE="$OUT/last.md"
{
    if [ "$REPEAT" -gt 1 ]; then
        echo "Each row is the median (by rps) of $REPEAT alternated runs of ${DURATION} s; the last column gives the lowest and highest rps of those runs."
        echo
    fi
    echo "| workload | config | rps | p50 ms | p99 ms | p99.9 ms | server cores | rps/core | rps vs A | rps/core vs A | rps vs B | rps/core vs B | peak RSS MiB | wrk cores | non-2xx | socket errors |$([ "$REPEAT" -gt 1 ] && echo " rps range |")"
    echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|$([ "$REPEAT" -gt 1 ] && echo "--:|")"
    for row in "${ROWS[@]}"; do
        IFS=, read -r c w rps p50 p99 p999 cores per rss e s g n lo hi <<<"$row"
        awk -v d="$(describe "$w")" -v c="$c" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v p999="$p999" \
            -v cores="$cores" -v per="$per" -v rss="$rss" -v e="$e" -v s="$s" -v g="$g" \
            -v n="$n" -v lo="$lo" -v hi="$hi" -v rep="$REPEAT" \
            -v cr="$CEIL_RPS" -v cp="$CEIL_PER" -v br="$CEILB_RPS" -v bp="$CEILB_PER" 'BEGIN {
                printf "| %s | %s | %d | %.2f | %.2f | %.2f | %.2f | %d | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %.0f | %.2f | %d | %d |",
                    d, c, rps, p50 / 1000, p99 / 1000, p999 / 1000, cores, per,
                    100 * rps / cr, 100 * per / cp, 100 * rps / br, 100 * per / bp, rss / 1024, g, e, s
                if (rep > 1) printf " %d–%d (%d) |", lo, hi, n
                printf "\n"
            }'
    done
    if [ "$REPLICAS" = 0 ]; then
        echo "| all workloads | --replicas 1 | skipped: $REPLICAS_NOTE | | | | | | | | | | | | | |"
    fi
    echo
    echo "Ceilings (median runs): A, bare hyper (examples/bare.rs): $CEIL_RPS rps, $CEIL_PER rps per server core; B, shardkv's connection layer with a fixed answer (examples/ceiling.rs): $CEILB_RPS rps, $CEILB_PER per core. B/A, the cost of the connection layer: $(awk -v a="$CEIL_RPS" -v b="$CEILB_RPS" -v p="$CEIL_PER" -v q="$CEILB_PER" 'BEGIN { printf "%.2f (rps), %.2f (per core)", b / a, q / p }')."
    echo
    echo "Memory: $KEYS keys (16-byte keys \`key:%012d\`, 100-byte values, no TTL) loaded with /set into a fresh server."
    echo
    echo "| config | keys | RSS empty MiB | RSS loaded MiB | RSS bytes/key | preload s | preload keys/s |"
    echo "|---|--:|--:|--:|--:|--:|--:|"
    for row in "${MEM_ROWS[@]}"; do
        IFS=, read -r c k e f per secs rate <<<"$row"
        awk -v c="$c" -v k="$k" -v e="$e" -v f="$f" -v per="$per" -v secs="$secs" -v rate="$rate" 'BEGIN {
            printf "| %s | %d | %.1f | %.1f | %.1f | %.1f | %d |\n", c, k, e / 1024, f / 1024, per, secs, rate }'
    done
    echo
    if [ "${#LAT_ROWS[@]}" -gt 0 ]; then
        echo "Latency at a fixed offered load of 80% and 50% of the bare ceiling's (A's) saturation rps (oha, GET hit, ${LAT_SECONDS} s each, $WRK_CONNS connections, latency correction on; \"errors\" are requests still in flight at the deadline; a row whose achieved rate is below 97% of the offered one is not a valid measurement):"
        echo
        echo "| config | offered rps | achieved rps | achieved/offered | p50 ms | p99 ms | p99.9 ms | server cores | oha cores | non-2xx | errors |"
        echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
        for row in "${LAT_ROWS[@]}"; do
            IFS=, read -r c q a p50 p99 p999 cores bad errs g <<<"$row"
            awk -v c="$c" -v q="$q" -v a="$a" -v p50="$p50" -v p99="$p99" -v p999="$p999" -v cores="$cores" -v bad="$bad" -v errs="$errs" -v g="$g" 'BEGIN {
                printf "| %s | %d | %d | %.0f%% | %.3f | %.3f | %.3f | %.2f | %.2f | %d | %d |\n", c, q, a, 100 * a / q, p50 / 1000, p99 / 1000, p999 / 1000, cores, g, bad, errs }'
        done
        echo
    elif [ "$MODE" = standard ]; then
        echo "Latency at a fixed load: skipped. ${OHA_NOTE}"
        echo
    fi
} >"$TABLE"

# The load-suite targets (ratios to the ceiling), judged at --replicas 0 on the lock-free store.
first_label=$(config_label lockfree)
row_of() { printf '%s\n' "${ROWS[@]}" | awk -F, -v c="$1" -v w="$2" '$1 == c && $2 == w'; }
verdict() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN { ok = (dir == "ge") ? v >= t : v <= t; print ok ? "met" : "missed" }'; }
{
    echo "Targets, lock-free store$([ "$REPLICAS" = 1 ] && echo ', --replicas 0'):"
    echo
    echo "| target | measured | verdict |"
    echo "|---|--:|---|"
    for w in get_hit set_url set_rest mix; do
        row=$(row_of "$first_label" "$w")
        [ -n "$row" ] || continue
        goal=85
        [ "$w" = get_hit ] && goal=90
        IFS=, read -r _ _ rps _ _ _ _ per _ _ _ <<<"$row"
        r1=$(awk -v a="$rps" -v b="$CEIL_RPS" 'BEGIN { printf "%.0f", 100 * a / b }')
        r2=$(awk -v a="$per" -v b="$CEIL_PER" 'BEGIN { printf "%.0f", 100 * a / b }')
        echo "| $(describe "$w"): rps ≥ $goal% of ceiling A's | $r1% | $(verdict "$r1" "$goal" ge) |"
        echo "| $(describe "$w"): rps/core ≥ $goal% of ceiling A's | $r2% | $(verdict "$r2" "$goal" ge) |"
    done
    rate80=$(echo "${ROWS_FIRST}" | awk -F, '{ printf "%d", $3 * 0.8 }')
    bare_p99=$(printf '%s\n' "${LAT_ROWS[@]}" | awk -F, -v q="$rate80" '$1 == "ceiling A" && $2 == q { print $5 }')
    for row in "${LAT_ROWS[@]}"; do
        IFS=, read -r c q a _ p99 _ _ _ _ _ <<<"$row"
        if [ "$c" != "$first_label" ] || [ "$q" != "$rate80" ] || [ -z "$bare_p99" ]; then continue; fi
        ratio=$(awk -v p="$p99" -v b="$bare_p99" 'BEGIN { printf "%.2f", p / b }')
        okrate=$(awk -v a="$a" -v q="$q" 'BEGIN { print (a >= 0.97 * q) ? "" : " (offered rate not reached: not a valid measurement)" }')
        echo "| GET hit p99 at 80% of A's rps ≤ 1.2× A's p99 at that rate | $(awk -v p="$p99" -v b="$bare_p99" 'BEGIN { printf "%.3f ms vs %.3f ms", p / 1000, b / 1000 }') = ${ratio}× | $(verdict "$ratio" 1.2 le)$okrate |"
    done
    spread=$(printf '%s\n' "${ROWS[@]}" | awk -F, '$1 == "ceiling A" { printf "%.1f", 100 * ($15 - $14) / $3 }')
    behind=$(for w in "${WORKLOADS[@]}"; do
        a=$(row_of "$first_label" "$w" | cut -d, -f3)
        b=$(row_of "$(config_label rwlock)" "$w" | cut -d, -f3)
        if [ -n "$a" ] && [ -n "$b" ]; then
            awk -v a="$a" -v b="$b" -v s="$spread" -v w="$w" 'BEGIN { if (100 * (b - a) / b > s) print w }'
        fi
    done | wc -l)
    echo "| lock-free ≥ RwLock on every workload (a gap inside the ceiling's run-to-run spread, $spread%, counts as equal) | behind on $behind of ${#WORKLOADS[@]} | $([ "$behind" = 0 ] && echo met || echo missed) |"
    echo
    echo "lock-free vs RwLock, rps (lock-free / RwLock):"
    echo
    echo "| workload | lock-free rps | RwLock rps | ratio |"
    echo "|---|--:|--:|--:|"
    for w in "${WORKLOADS[@]}"; do
        a=$(row_of "$first_label" "$w" | cut -d, -f3)
        b=$(row_of "$(config_label rwlock)" "$w" | cut -d, -f3)
        if [ -n "$a" ] && [ -n "$b" ]; then
            awk -v d="$(describe "$w")" -v a="$a" -v b="$b" 'BEGIN { printf "| %s | %d | %d | %.2f |\n", d, a, b, a / b }'
        fi
    done
    echo
} >>"$TABLE"

{
    printf '%s\n' "config,keys,rss_empty_kb,rss_loaded_kb,rss_bytes_per_key,preload_s,preload_keys_per_s"
    printf '%s\n' "${MEM_ROWS[@]}"
} >"$OUT/last-memory.csv"
if [ "${#LAT_ROWS[@]}" -gt 0 ]; then
    {
        echo "config,offered_rps,achieved_rps,p50_us,p99_us,p999_us,server_cores,non2xx,errors"
        printf '%s\n' "${LAT_ROWS[@]}"
    } >"$OUT/last-latency.csv"
fi

if [ "$MODE" = smoke ]; then
    echo "Smoke mode ($DURATION s per workload, $KEYS keys): checks that every workload runs and answers as expected; its figures are not measurements." >>"$TABLE"
fi

if [ "$MODE" = standard ]; then
    # Memory per key against redis-server, loaded with the same bytes (perf/memory.sh).
    if bash "$PERF/memory.sh" --bin "$BIN" >"$OUT/logs/memory.log" 2>&1; then
        cat "$OUT/memory.md" >>"$TABLE"
    else
        FAILED+=("perf/memory.sh failed (see perf/out/logs/memory.log)")
    fi
fi

echo
cat "$TABLE"
elapsed=$(($(date +%s) - PERF_START))
log "suite finished in $elapsed s ($MODE mode)"

# ---------------------------------------------------------------- record
if [ "$RECORD" = 1 ]; then
    RESULTS="$PERF/RESULTS.md"
    DAY=$(date -u '+%Y-%m-%d')
    HISTORY="$PERF/history/$DAY-load-suite.md"
    MARKER="<!-- perf/run.sh: load-suite runs, newest first; insert new runs below this line -->"
    LATEST_BEGIN="<!-- perf/run.sh --record: the latest load-suite run begins here -->"
    LATEST_END="<!-- perf/run.sh --record: the latest load-suite run ends here -->"
    section="$OUT/section.md"
    {
        echo "### Load suite, $(date -u '+%Y-%m-%d %H:%M UTC'), rev $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src Cargo.toml 2>/dev/null || echo ' (+ uncommitted changes in src/ or Cargo.toml)')"
        echo
        echo "- machine: \`nproc\` = $NPROC, $(uname -sr), load average (1, 5, 15 min) after the build, before the suite: $LOAD_BEFORE"
        echo "- command: \`bash perf/run.sh $ARGS_GIVEN\` ($elapsed s after the build); servers default \`--workers\` (= cores) and \`--shards\`; ceiling: \`target/dist/examples/ceiling\`"
        echo "- each workload: \`wrk -t$WRK_THREADS -c$WRK_CONNS -d${DURATION}s --latency -s perf/lua/common.lua+perf/lua/WORKLOAD.lua URL\`, configurations alternated (ABBA) per workload$([ "$REPEAT" -gt 1 ] && echo ", $REPEAT runs each, median reported")"
        [ "${#LAT_ROWS[@]}" -gt 0 ] && echo "- latency: \`oha -z ${LAT_SECONDS}s -c $WRK_CONNS -q RATE --latency-correction --no-tui --output-format json --rand-regex-url 'http://127[.]0[.]0[.]1:PORT/get[?]key=key:000000[0-9]{6}'\` with RATE = the ceiling's first saturation rps / 2 and / 10"
        echo "- preload: \`wrk -t$WRK_THREADS -c$WRK_CONNS -s perf/lua/preload.lua\` (each key once via /set, stopped when /dashboard counts all keys)"
        echo "- $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)$(command -v oha >/dev/null 2>&1 && echo ", $(oha --version 2>/dev/null | head -1)")"
        [ -n "$REPLICAS_NOTE" ] && echo "- $REPLICAS_NOTE"
        echo
        cat "$TABLE"
    } >"$section"

    # The day's history file: every recorded run, newest first, below the marker.
    mkdir -p "$PERF/history"
    if [ -f "$HISTORY" ] && grep -qF "$MARKER" "$HISTORY"; then
        awk -v marker="$MARKER" -v sec="$section" '
            { print }
            $0 == marker { print ""; while ((getline l < sec) > 0) print l; }' "$HISTORY" >"$HISTORY.tmp"
        mv "$HISTORY.tmp" "$HISTORY"
    else
        {
            [ -f "$HISTORY" ] && { cat "$HISTORY"; echo; }
            [ -f "$HISTORY" ] || { echo "# $DAY: HTTP load suite (\`perf/run.sh --record\`)"; echo; }
            echo "Each \`bash perf/run.sh --record\` of the day is inserted below the marker, so newer runs sit"
            echo "above older ones; the newest is also the latest run shown in \`perf/RESULTS.md\`."
            echo
            echo "$MARKER"
            echo
            cat "$section"
        } >"$HISTORY.tmp"
        mv "$HISTORY.tmp" "$HISTORY"
    fi
    log "recorded in perf/history/$DAY-load-suite.md"

    # perf/RESULTS.md shows only the latest run, between its two markers.
    if [ -f "$RESULTS" ] && grep -qF "$LATEST_BEGIN" "$RESULTS" && grep -qF "$LATEST_END" "$RESULTS"; then
        latest="$OUT/latest.md"
        {
            echo "From [\`history/$DAY-load-suite.md\`](history/$DAY-load-suite.md), where earlier runs are kept."
            echo
            cat "$section"
        } >"$latest"
        awk -v b="$LATEST_BEGIN" -v e="$LATEST_END" -v sec="$latest" '
            $0 == b { print; print ""; while ((getline l < sec) > 0) print l; skip = 1; next }
            $0 == e { skip = 0 }
            !skip { print }' "$RESULTS" >"$RESULTS.tmp"
        mv "$RESULTS.tmp" "$RESULTS"
        log "perf/RESULTS.md now shows this run as the latest (its targets table is kept by hand)"
    else
        log "perf/RESULTS.md has no latest-run markers ($LATEST_BEGIN): not updated"
    fi
    if command -v python3 >/dev/null 2>&1 && python3 -c 'import matplotlib' 2>/dev/null; then
        python3 "$PERF/plot.py" "$CSV" "$PERF/results.png" >&2 || log "perf/plot.py failed: no plot"
    else
        log "matplotlib is not installed (pip install matplotlib): perf/results.png not redrawn"
    fi
fi

if [ "${#FAILED[@]}" -gt 0 ]; then
    printf 'FAILED: %s\n' "${FAILED[@]}" >&2
    exit 1
fi
