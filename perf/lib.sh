# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this file
# Shared helpers of the perf scripts (run.sh, soak.sh, background.sh, persistence.sh). Source it
# right after `set -euo pipefail`, then call perf_init:
#
#   # shellcheck source=perf/lib.sh
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   perf_init TAG        # log prefix "[TAG  12s]"; cleanup on exit; exit 130 on INT/TERM
#
# What it gives:
#   PERF_ROOT, PERF_DIR, PERF_SELF  the checkout, perf/, and the calling script (absolute paths)
#   PERF_START                      when perf_init ran (seconds since the epoch)
#   log MSG / die MSG               a timestamped line on stderr; die exits 1
#   usage                           prints the calling script's header comment (its --help)
#   need_apt CMD PACKAGE            installs PACKAGE with apt-get (as root) if CMD is missing
#   target_dir                      $CARGO_TARGET_DIR, or target/ of the checkout
#   cargo_build ARGS...             `cargo build ARGS` in the checkout, timed in the log
#   gen_lua DIR NAME...             DIR/<basename NAME>.lua = lua/common.lua + lua/NAME.lua
#   start_server LOG BIN ARGS...    starts `BIN --listen 127.0.0.1:0 ARGS`, its stdout and stderr
#                                   appended to LOG, and waits for its "listening on http://"
#                                   line (for up to START_TIMEOUT seconds, default 30); sets
#                                   SERVER_PID and SERVER_ADDR (host:port)
#   stop_server PID [SECONDS]       SIGTERM, then SIGKILL after SECONDS (default 10; 0 = wait)
#   forget PID                      drops PID from the processes cleaned up at exit
#   PIDS, CLEANUP_DIRS              what the exit trap stops (SIGTERM, then SIGKILL after
#                                   STOP_TIMEOUT seconds, default 5) and removes
#   cpu_ticks PID                   utime + stime of a process from /proc/PID/stat, in ticks
#   CLK_TCK                         clock ticks per second
#   status_kb PID FIELD             a /proc/PID/status field in kB (VmRSS, VmHWM)
#   free_port                       a free TCP port on 127.0.0.1
#   start_resp_server LOG redis|BIN ARGS...
#                                   a fresh server speaking RESP on a free loopback port:
#                                   `redis-server --save '' --appendonly no ARGS` (waits for its
#                                   PING), or shardkv's BIN through start_server (its port read
#                                   from the "listening on redis://" line); sets SERVER_PID and
#                                   RESP_PORT
#   used_memory PORT                INFO memory's used_memory of the RESP server on PORT
#   dash_keys URL                   the key count on URL's /dashboard
#   wrk_until_keys PID URL KEYS [S] waits for a preloading wrk PID, stopping it with SIGINT (it
#                                   still prints its summary) once /dashboard counts KEYS keys
#   wrk_preload LOG URL KEYS S WRK_ARGS...
#                                   runs `wrk WRK_ARGS URL` (output to LOG) until /dashboard
#                                   counts KEYS keys, polling every S seconds; dies unless it
#                                   then counts exactly KEYS. PERF_* variables set on the call
#                                   reach the wrk script.

PERF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PERF_ROOT=$(cd "$PERF_DIR/.." && pwd)
PERF_SELF=$(cd "$(dirname "${BASH_SOURCE[1]:-$0}")" && pwd)/$(basename "${BASH_SOURCE[1]:-$0}")
PERF_TAG=perf
PERF_START=$(date +%s)
CLK_TCK=$(getconf CLK_TCK)
PIDS=()
CLEANUP_DIRS=()
SERVER_PID=""
SERVER_ADDR=""
START_TIMEOUT=30
STOP_TIMEOUT=5

perf_init() { # TAG
    PERF_TAG=$1
    PERF_START=$(date +%s)
    trap perf_cleanup EXIT
    trap 'exit 130' INT TERM
}

log() { printf '[%s %3ds] %s\n' "$PERF_TAG" "$(($(date +%s) - PERF_START))" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

usage() { sed -n '2,/^set -euo/p' "$PERF_SELF" | sed '$d; s/^# \{0,1\}//'; }

# ---------------------------------------------------------------- tools and builds
need_apt() { # command package
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing $2 (apt-get)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    fi
    command -v "$1" >/dev/null 2>&1 || die "$1 is missing: install the Debian package $2 (apt-get install -y $2)"
}

target_dir() { echo "${CARGO_TARGET_DIR:-$PERF_ROOT/target}"; }

cargo_build() { # cargo build arguments
    local t0
    t0=$(date +%s)
    log "cargo build $*"
    (cd "$PERF_ROOT" && cargo build "$@")
    log "built in $(($(date +%s) - t0)) s"
}

gen_lua() { # dir name... : each wrk script is lua/common.lua followed by lua/NAME.lua
    local dir=$1 name
    shift
    mkdir -p "$dir"
    for name in "$@"; do
        cat "$PERF_DIR/lua/common.lua" "$PERF_DIR/lua/$name.lua" >"$dir/$(basename "$name").lua"
    done
}

# ---------------------------------------------------------------- servers
# start_server LOG BIN ARGS...: starts BIN on a free loopback port (--listen 127.0.0.1:0, and
# --resp-listen 127.0.0.1:0 when BIN has a Redis-protocol listener), its
# output appended to LOG, and reads the bound address from the "listening on http://" line it
# logs (only lines written after this start count, so LOG may hold an earlier run's output).
# Sets SERVER_PID and SERVER_ADDR; the PID joins PIDS. Dies if the server exits first, or
# prints no address within START_TIMEOUT seconds.
start_server() {
    local logf=$1 bin=$2 from=0
    shift 2
    if [ -f "$logf" ]; then from=$(wc -l <"$logf"); fi
    # A server with a Redis-protocol listener takes a free port for it too, never 6379.
    local resp=()
    if "$bin" --help 2>/dev/null | grep -q -- '--resp-listen'; then
        resp=(--resp-listen 127.0.0.1:0)
    fi
    "$bin" --listen 127.0.0.1:0 "${resp[@]}" "$@" >>"$logf" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    SERVER_ADDR=""
    for _ in $(seq $((START_TIMEOUT * 10))); do
        SERVER_ADDR=$(tail -n +"$((from + 1))" "$logf" 2>/dev/null |
            grep -o 'listening on http://[0-9.]*:[0-9]*' | head -1 | sed 's|.*http://||') || true
        if [ -n "$SERVER_ADDR" ]; then
            case "$SERVER_ADDR" in
                127.0.0.1:*) return 0 ;;
                *) die "$(basename "$bin") listens on $SERVER_ADDR, not on 127.0.0.1" ;;
            esac
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            tail -n +"$((from + 1))" "$logf" >&2
            die "$(basename "$bin") exited at start-up (log: $logf)"
        fi
        sleep 0.1
    done
    tail -n +"$((from + 1))" "$logf" >&2
    die "$(basename "$bin") printed no 'listening on http://' line within $START_TIMEOUT s (log: $logf)"
}

forget() { # PID: it has been waited for; cleanup must not signal whatever reuses its id
    local p keep=()
    for p in "${PIDS[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

stop_server() { # pid [seconds]: SIGTERM, then SIGKILL after SECONDS (default 10; 0 = no bound)
    local pid=$1 tenths=$((${2:-10} * 10))
    kill -TERM "$pid" 2>/dev/null || true
    if [ "$tenths" -gt 0 ]; then
        for _ in $(seq "$tenths"); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    forget "$pid"
}

# The EXIT trap (perf_init): every process in PIDS gets SIGTERM, then STOP_TIMEOUT seconds to
# exit before SIGKILL; then every directory in CLEANUP_DIRS is removed.
# shellcheck disable=SC2317 # invoked by the trap
perf_cleanup() {
    local pid d
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq $((STOP_TIMEOUT * 10))); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for d in "${CLEANUP_DIRS[@]}"; do
        rm -rf "$d"
    done
}

# ---------------------------------------------------------------- sampling
cpu_ticks() { # utime + stime of a process, in clock ticks
    local stat rest
    stat=$(<"/proc/$1/stat")
    rest=${stat##*) }
    # shellcheck disable=SC2086
    set -- $rest
    echo $((${12} + ${13}))
}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
used_memory() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }'; }

start_resp_server() { # log redis|bin args...
    local logf=$1 kind=$2
    shift 2
    if [ "$kind" = redis ]; then
        RESP_PORT=$(free_port)
        redis-server --port "$RESP_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no "$@" >"$logf" 2>&1 &
        SERVER_PID=$!
        PIDS+=("$SERVER_PID")
        for _ in $(seq 100); do redis-cli -p "$RESP_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
        die "redis-server did not answer PING on port $RESP_PORT (log: $logf)"
    fi
    start_server "$logf" "$kind" "$@"
    RESP_PORT=$(grep -o 'redis://[0-9.]*:[0-9]*' "$logf" | tail -1 | sed 's|.*:||')
    [ -n "$RESP_PORT" ] || die "$(basename "$kind") logged no Redis-protocol port (log: $logf)"
}

status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
dash_keys() { curl -fsS --max-time 5 "$1/dashboard" | grep -o '"keys":[0-9]*' | head -1 | cut -d: -f2; }

wrk_preload() { # log url keys poll-seconds wrk-args...
    local logf=$1 url=$2 want=$3 every=$4 pid keys
    shift 4
    wrk "$@" "$url" >"$logf" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wrk_until_keys "$pid" "$url" "$want" "$every"
    keys=$(dash_keys "$url" || echo 0)
    [ "${keys:-0}" -eq "$want" ] || die "the preload of $url stored ${keys:-0} keys, expected $want (see $logf)"
}

wrk_until_keys() { # pid url keys [poll seconds]
    local pid=$1 url=$2 want=$3 every=${4:-0.2} keys
    while kill -0 "$pid" 2>/dev/null; do
        sleep "$every"
        keys=$(dash_keys "$url" || echo 0)
        if [ "${keys:-0}" -ge "$want" ]; then
            kill -INT "$pid" 2>/dev/null || true
            break
        fi
    done
    wait "$pid" || true
    forget "$pid"
}
