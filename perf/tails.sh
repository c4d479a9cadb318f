#!/usr/bin/env bash
# Read-latency tails, lock-free shard against RwLock shard: builds examples/read_tails with the
# dist profile, runs it, and writes its summary table to perf/out/tails.md (replaced on every
# run), which it also prints. From a checkout:
#
#   bash perf/tails.sh                     # flood, resize to 1M and 8M, zipf; 3 rounds, 5 s runs
#   bash perf/tails.sh --quick             # smoke: tiny sizes, 0.5 s runs (about 10 s once built)
#   bash perf/tails.sh --scenario resize --keys 1000000 --rounds 1
#
# What is measured (see the module documentation of examples/read_tails.rs): one shard, one
# reader thread timing every `get` into an HDR histogram while one writer thread overwrites
# (flood, zipf) or inserts (resize); p50, p99, p99.9, p99.99 and max of the reads per kind, the
# median over the rounds with min–max, and a rwlock/lockfree ratio row. The reader and writer
# threads pin themselves to cores 0 and 1 (taskset).
#
# The full run needs about 2 GB of memory per store for the 8M resize and takes several
# minutes. Anything else running on the machine lands in the tails of both kinds: the table
# records the load average before and after.
#
# Options: --quick, --no-build (use the binary already built), --help; every other argument
# goes to read_tails as it is (--kind, --scenario, --seconds, --keys, --rounds, --no-pin).
set -euo pipefail
# shellcheck source=perf/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
perf_init tails

BUILD=1
PASS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0 ;;
        -h | --help) usage; exit 0 ;;
        *) PASS+=("$1") ;;
    esac
    shift
done

need_apt taskset util-linux

BIN="$(target_dir)/dist/examples/read_tails"
if [ "$BUILD" = 1 ]; then
    cargo_build --profile dist --example read_tails
fi
[ -x "$BIN" ] || die "$BIN not built (cargo build --profile dist --example read_tails)"

OUT="$PERF_DIR/out"
mkdir -p "$OUT"
TABLE="$OUT/tails.md"
REV=$(git -C "$PERF_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$PERF_ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    REV="$REV (with uncommitted changes)"
fi
{
    echo "## Read tails: lock-free vs RwLock shard"
    echo
    echo "Rev $REV, $(date -u '+%Y-%m-%d %H:%M UTC'), \`perf/tails.sh ${PASS[*]}\`."
    echo
} >"$TABLE"

log "load average before (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN" --markdown "$TABLE" "${PASS[@]}" >/dev/null
log "table in $TABLE"
cat "$TABLE"
