#!/usr/bin/env bash
# CI smoke run of the load suite: every workload for 2 s over a small preload, wrk only
# (`run.sh --smoke`, arguments passed on); then, when the binary it built serves RESP
# (`--resp-listen` in its --help), `resp.sh --quick` against redis-server (about 15 s; needs
# redis-server, redis-benchmark and redis-cli). PERF_SMOKE_RESP=0 skips the RESP step. Last,
# `tails.sh --quick`: read-latency tails of the two shard kinds, tiny sizes (about 10 s); and the
# eviction scripts' quick modes: hit ratios against redis-server (about 40 s), throughput under
# constant eviction and RSS against the cap (about 20 s each).
set -euo pipefail
PERF=$(cd "$(dirname "$0")" && pwd)
bash "$PERF/run.sh" --smoke "$@"

BIN="${CARGO_TARGET_DIR:-$PERF/../target}/dist/shardkv"
if [ "${PERF_SMOKE_RESP:-1}" = 0 ]; then
    echo "smoke: RESP step skipped (PERF_SMOKE_RESP=0)" >&2
elif ! "$BIN" --help 2>/dev/null | grep -q -- '--resp-listen'; then
    echo "smoke: RESP step skipped ($BIN has no --resp-listen)" >&2
else
    bash "$PERF/resp.sh" --quick --bin-a "$BIN"
fi
bash "$PERF/memory.sh" --quick --bin "$BIN"
bash "$PERF/tails.sh" --quick
bash "$PERF/eviction.sh" --quick --bin "$BIN"
bash "$PERF/eviction_cost.sh" --quick --bin "$BIN"
bash "$PERF/eviction_rss.sh" --quick --bin "$BIN"
