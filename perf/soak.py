"""The soak's load generator, sampler and checks (see perf/soak.sh for what and why).

perf/soak.sh starts the server and runs this file twice (Python stdlib only):

    python3 perf/soak.py run --addr HOST:PORT --pid PID --duration S --keys N --procs N \
        --threads N --max-slope MIB_PER_MIN --max-ratio X --csv FILE --work DIR \
        --data-dir DIR --summary FILE
    python3 perf/soak.py verify-restart --addr HOST:PORT --work DIR --summary FILE

`run` drives the load, samples every 10 s into --csv, then checks errors, RSS growth and
replica == primary (failing over every shard), and leaves the expected contents in
--work/expected.json; `verify-restart` reads them back from a restarted server. Both append
their summary lines to --summary and exit 1 on a failure.
"""
import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import sys
import threading
import time
import urllib.parse

SAMPLE_EVERY = 10.0
SLACK = 0.25          # s: clock skew allowance around a TTL deadline
UNKNOWN = "?"         # a key whose last write failed: its state is not known until the next write
MAX_ERROR_SAMPLES = 20


def connect(addr):
    host, port = addr.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=30)


class Client:
    """One keep-alive connection; reconnects after a failure (the failure is counted)."""

    def __init__(self, addr):
        self.addr = addr
        self.conn = None

    def request(self, method, path, body=None):
        if self.conn is None:
            self.conn = connect(self.addr)
        try:
            self.conn.request(method, path, body=body)
            r = self.conn.getresponse()
            return r.status, r.read()
        except Exception:
            self.conn.close()
            self.conn = None
            raise


def judge(st, present, value, t0, t1):
    """Whether an answer (present?, value) read between t0 and t1 fits the key's record."""
    if st == UNKNOWN:
        return True
    if st is None:
        return not present
    want, s0, s1, ttl = st
    if ttl is None:
        return present and (value is None or value == want)
    if present and value is not None and value != want:
        return False
    if not present and t1 < s0 + ttl - SLACK:
        return False  # gone before its TTL could have passed
    if present and t0 > s1 + ttl + SLACK:
        return False  # served after its TTL surely passed
    return True


def worker(slot, keys, addr, deadline, counters, seed, out):
    rnd = random.Random(seed)
    client = Client(addr)
    state = {}  # key -> None (absent) | UNKNOWN | [value, t_send, t_ack, ttl_s or None]
    errors = []
    c = [0, 0, 0, 0]  # ops, errors, wrong, expected 404s
    n = 0

    def error(msg):
        c[1] += 1
        if len(errors) < MAX_ERROR_SAMPLES:
            errors.append(f"{time.strftime('%H:%M:%S')} {msg}")

    def wrong(key, msg):
        c[2] += 1
        if len(errors) < MAX_ERROR_SAMPLES:
            errors.append(f"{time.strftime('%H:%M:%S')} WRONG {key}: {msg}")

    def call(method, path, body=None):
        try:
            return client.request(method, path, body)
        except Exception as e:  # a failed connection is an error too
            error(f"{method} {path[:60]}: {type(e).__name__}: {e}")
            return None, b""

    while True:
        t = time.time()
        if t >= deadline:
            break
        n += 1
        key = rnd.choice(keys)
        qk = urllib.parse.quote(key, safe="")
        value = f"{key}|{slot}.{n}|" + "x" * rnd.randint(0, 400)
        r = rnd.random()
        t0 = time.time()
        if r < 0.53:  # writes: PUT without TTL, PUT with TTL, seed /set
            ttl = None
            if r < 0.28:
                status, body = call("PUT", f"/v1/kv/{qk}", value.encode())
                ok = status == 204
            elif r < 0.48:
                ttl = rnd.randint(1000, 5000) / 1000
                status, body = call("PUT", f"/v1/kv/{qk}?ttl={int(ttl * 1000)}ms", value.encode())
                ok = status == 204
            else:
                path = f"/set?key={urllib.parse.quote_plus(key)}&value={urllib.parse.quote_plus(value)}"
                if rnd.random() < 0.5:
                    ttl = rnd.randint(1, 5)
                    path += f"&ttl={ttl}s"
                status, body = call("GET", path)
                ok = status == 200 and body == b"OK"
            t1 = time.time()
            if ok:
                state[key] = [value, t0, t1, ttl]
            else:
                state[key] = UNKNOWN
                if status is not None:
                    error(f"write {key}: status {status} {body[:200]!r}")
        elif r < 0.86:  # reads: REST and seed
            if r < 0.81:
                status, body = call("GET", f"/v1/kv/{qk}")
            else:
                status, body = call("GET", f"/get?key={urllib.parse.quote_plus(key)}")
            t1 = time.time()
            if status == 200:
                if not judge(state.get(key), True, body.decode("utf-8", "replace"), t0, t1):
                    wrong(key, f"read {body[:60]!r}, record {str(state.get(key))[:100]}")
            elif status == 404:
                c[3] += 1
                if not judge(state.get(key), False, None, t0, t1):
                    wrong(key, f"404, record {str(state.get(key))[:100]}")
            elif status is not None:
                error(f"read {key}: status {status} {body[:200]!r}")
        elif r < 0.96:  # delete
            status, body = call("DELETE", f"/v1/kv/{qk}")
            t1 = time.time()
            if status in (204, 404):
                if status == 404:
                    c[3] += 1
                if not judge(state.get(key), status == 204, None, t0, t1):
                    wrong(key, f"delete answered {status}, record {str(state.get(key))[:100]}")
                state[key] = None
            else:
                state[key] = UNKNOWN
                if status is not None:
                    error(f"delete {key}: status {status} {body[:200]!r}")
        elif r < 0.98:  # mset of 10 own keys, some with TTL
            batch = rnd.sample(keys, min(10, len(keys)))
            items = []
            for i, k in enumerate(batch):
                v = f"{k}|{slot}.{n}.{i}|" + "y" * rnd.randint(0, 200)
                item = {"key": k, "value": v}
                if rnd.random() < 0.3:
                    item["ttl"] = f"{rnd.randint(1, 5)}s"
                items.append(item)
            status, body = call("POST", "/v1/mset", json.dumps({"items": items}).encode())
            t1 = time.time()
            ok = status == 200 and json.loads(body).get("written") == len(items)
            for item in items:
                ttl = float(item["ttl"][:-1]) if "ttl" in item else None
                state[item["key"]] = [item["value"], t0, t1, ttl] if ok else UNKNOWN
            if not ok and status is not None:
                error(f"mset: status {status} {body[:200]!r}")
        else:  # mget of 20 own keys
            batch = rnd.sample(keys, min(20, len(keys)))
            status, body = call("POST", "/v1/mget", json.dumps({"keys": batch}).encode())
            t1 = time.time()
            if status == 200:
                values = json.loads(body)["values"]
                for k in batch:
                    v = values.get(k, "<missing from the answer>")
                    if not judge(state.get(k), v is not None, v, t0, t1):
                        wrong(k, f"mget {str(v)[:60]!r}, record {str(state.get(k))[:100]}")
            elif status is not None:
                error(f"mget: status {status} {body[:200]!r}")
        c[0] += 1
        if n % 32 == 0:
            counters[slot * 4:slot * 4 + 4] = c
    counters[slot * 4:slot * 4 + 4] = c
    out[slot] = {"state": state, "errors": errors}


def proc_main(p, threads, nslots, nkeys, addr, deadline, counters, seed, result_path):
    out = {}
    ts = []
    for t in range(threads):
        slot = p * threads + t
        keys = [f"soak/{i}" for i in range(slot, nkeys, nslots)]
        th = threading.Thread(target=worker, args=(slot, keys, addr, deadline, counters,
                                                   seed * 1000 + slot, out))
        th.start()
        ts.append(th)
    for th in ts:
        th.join()
    with open(result_path, "w") as f:
        json.dump(out, f)


def http_json(addr, method, path, body=None):
    conn = connect(addr)
    try:
        conn.request(method, path, body=body)
        r = conn.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)
    finally:
        conn.close()


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def dir_mib(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total / 2**20


def read_all(addr, keys):
    """mget every key in batches: {key: value or None}, with the time span of each batch."""
    got = {}
    spans = {}
    for i in range(0, len(keys), 1000):
        batch = keys[i:i + 1000]
        t0 = time.time()
        status, body = http_json(addr, "POST", "/v1/mget", json.dumps({"keys": batch}).encode())
        t1 = time.time()
        if status != 200:
            raise RuntimeError(f"mget answered {status}: {body}")
        for k in batch:
            got[k] = body["values"].get(k)
            spans[k] = (t0, t1)
    return got, spans


def compare(expected, got, spans):
    """Counts of how `got` fits the writers' records."""
    r = {"strict_ok": 0, "strict_bad": 0, "ttl_present": 0, "ttl_gone": 0, "ttl_bad": 0,
         "unknown": 0, "examples": []}
    for k, st in expected.items():
        v = got[k]
        t0, t1 = spans[k]
        if st == UNKNOWN:
            r["unknown"] += 1
            continue
        good = judge(st, v is not None, v, t0, t1)
        if st is None or st[3] is None:
            r["strict_ok" if good else "strict_bad"] += 1
        else:
            r["ttl_bad" if not good else ("ttl_present" if v is not None else "ttl_gone")] += 1
        if not good and len(r["examples"]) < 10:
            r["examples"].append(f"{k}: got {str(v)[:50]!r}, record {str(st)[:80]}")
    return r


def comparison_line(label, r):
    """One line for the log from a `compare` result."""
    return (f"{label} vs records: {r['strict_ok']} exact (no TTL or absent), {r['strict_bad']} wrong;"
            f" TTL keys {r['ttl_present']} present, {r['ttl_gone']} gone, {r['ttl_bad']} wrong;"
            f" {r['unknown']} unknown")


def warmup_s(duration):
    """The warm-up: the first third of the run, at least 30 s (perf/soak_plot.py agrees)."""
    return max(duration / 3, 30.0)


def slope_per_min(points):
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    sxy = sum((t - mx) * (v - my) for t, v in points)
    return (sxy / sxx) * 60 if sxx else 0.0


def run(a):
    nslots = a.procs * a.threads
    counters = mp.Array("q", nslots * 4, lock=False)
    ctx = mp.get_context("fork")
    start = time.time()
    deadline = start + a.duration
    procs = [ctx.Process(target=proc_main,
                         args=(p, a.threads, nslots, a.keys, a.addr, deadline, counters,
                               a.seed + p, os.path.join(a.work, f"result-{p}.json")))
             for p in range(a.procs)]
    for p in procs:
        p.start()

    columns = ["elapsed_s", "rss_mib", "rps", "ops", "errors", "wrong_reads", "expected_404s",
               "keys", "keys_with_ttl", "replica_lag_ops", "open_connections", "data_dir_mib"]
    rows = []
    prev_ops, prev_t = 0, start
    with open(a.csv, "w") as csv:
        csv.write(",".join(columns) + "\n")
        k = 0
        while True:
            target = start + k * SAMPLE_EVERY
            time.sleep(max(0.0, target - time.time()))
            now = time.time()
            tot = [sum(counters[s * 4 + i] for s in range(nslots)) for i in range(4)]
            try:
                _, dash = http_json(a.addr, "GET", "/dashboard")
                keys, ttl_keys = dash["keys"], dash["keysWithTtl"]
                lag = sum(r["lagOps"] for r in dash["replicas"])
                conns = dash["connections"]["open"]
            except Exception as e:  # the server is gone or stuck: recorded, and fails below
                print(f"dashboard failed at {now - start:.0f}s: {e}", flush=True)
                keys = ttl_keys = lag = conns = -1
            row = {"elapsed_s": round(now - start, 1), "rss_mib": round(rss_mib(a.pid), 2),
                   "rps": round((tot[0] - prev_ops) / max(now - prev_t, 1e-9), 1),
                   "ops": tot[0], "errors": tot[1], "wrong_reads": tot[2], "expected_404s": tot[3],
                   "keys": keys, "keys_with_ttl": ttl_keys, "replica_lag_ops": lag,
                   "open_connections": conns, "data_dir_mib": round(dir_mib(a.data_dir), 1)}
            prev_ops, prev_t = tot[0], now
            rows.append(row)
            csv.write(",".join(str(row[c]) for c in columns) + "\n")
            csv.flush()
            print(f"[{row['elapsed_s']:6.0f}s] rss {row['rss_mib']:7.1f} MiB  rps {row['rps']:7.0f}"
                  f"  errors {row['errors']}  wrong {row['wrong_reads']}  keys {keys}"
                  f"  ttl {ttl_keys}  lag {lag}  log {row['data_dir_mib']} MiB", flush=True)
            if now - start >= a.duration - 0.5:
                break
            k += 1
    for p in procs:
        p.join()
    load_done = time.time()

    expected, error_samples = {}, []
    for p in range(a.procs):
        with open(os.path.join(a.work, f"result-{p}.json")) as f:
            for slot, res in json.load(f).items():
                expected.update(res["state"])
                error_samples += res["errors"]
    tot = [sum(counters[s * 4 + i] for s in range(nslots)) for i in range(4)]
    ops, errors, wrong, misses = tot
    all_keys = [f"soak/{i}" for i in range(a.keys)]
    for k in all_keys:
        expected.setdefault(k, None)

    failures = []
    lines = []
    say = lines.append

    # 1. Errors.
    say(f"load: {a.duration:.0f} s, {a.procs} processes x {a.threads} threads, {a.keys} keys")
    say(f"ops: {ops} ({ops / a.duration:.0f} rps mean), expected 404s: {misses}, "
        f"errors: {errors}, wrong reads: {wrong}")
    if errors or wrong:
        failures.append(f"{errors} errors and {wrong} wrong reads during the load")
    for e in error_samples[:MAX_ERROR_SAMPLES]:
        say(f"  {e}")

    # 2. RSS after warm-up.
    warm = warmup_s(a.duration)
    steady = [r for r in rows if r["elapsed_s"] >= warm - 1]
    r0 = steady[0]["rss_mib"] if steady else float("nan")
    last = rows[-1]["rss_mib"]
    slope = slope_per_min([(r["elapsed_s"], r["rss_mib"]) for r in steady])
    rps_steady = [r["rps"] for r in steady[1:]] or [0]
    say(f"rss: start {rows[0]['rss_mib']:.1f} MiB, end of warm-up ({warm:.0f} s) {r0:.1f} MiB, "
        f"last {last:.1f} MiB, max {max(r['rss_mib'] for r in rows):.1f} MiB; "
        f"slope after warm-up {slope:+.2f} MiB/min over {len(steady)} samples "
        f"(limit {a.max_slope}), last/R0 {last / r0:.3f} (limit {a.max_ratio})")
    say(f"rps after warm-up: mean {sum(rps_steady) / len(rps_steady):.0f}, "
        f"min {min(rps_steady):.0f}, max {max(rps_steady):.0f}")
    say(f"data dir (log + snapshots): {rows[-1]['data_dir_mib']} MiB at the end")
    if slope > a.max_slope:
        failures.append(f"RSS grows {slope:.2f} MiB/min after warm-up (limit {a.max_slope})")
    if last > a.max_ratio * r0:
        failures.append(f"RSS {last:.1f} MiB > {a.max_ratio} x {r0:.1f} MiB")

    # 3. Replica == primary.
    t_wait = time.time()
    while True:
        _, dash = http_json(a.addr, "GET", "/dashboard")
        copies = dash["replicas"]
        if all(c["state"] == "live" and c["lagOps"] == 0 for c in copies):
            break
        if time.time() - t_wait > 60:
            failures.append(f"replicas not caught up 60 s after the load: {copies}")
            break
        time.sleep(0.1)
    say(f"replicas caught up {time.time() - load_done:.2f} s after the load stopped "
        f"({len(copies)} copies: {[(c['id'], c['state'], c['lagOps']) for c in copies]})")
    primary, spans = read_all(a.addr, all_keys)
    pc = compare(expected, primary, spans)
    say(comparison_line("primary", pc))
    shards = dash["numShards"]
    for i in range(shards):
        status, body = http_json(a.addr, "POST", f"/admin/shards/{i}/fail")
        if status != 200 or body["primary"] == body["failed"]:
            failures.append(f"failover of shard {i}: {status} {body}")
    _, dash = http_json(a.addr, "GET", "/dashboard")
    say(f"failed over {shards} shards: primaries now "
        f"{sorted(set(s['primary'] for s in dash['shards']))}, failed copies "
        f"{sorted(set(c for s in dash['shards'] for c in s['failedCopies']))}")
    replica, spans = read_all(a.addr, all_keys)
    rc = compare(expected, replica, spans)
    say(comparison_line("replica", rc))
    differ = [k for k in all_keys
              if (expected[k] is None or (expected[k] != UNKNOWN and expected[k][3] is None))
              and primary[k] != replica[k]]
    say(f"replica vs primary: {len(differ)} keys without TTL (or absent) differ")
    for label, c in (("primary", pc), ("replica", rc)):
        if c["strict_bad"] or c["ttl_bad"]:
            failures.append(f"{label}: {c['strict_bad']} + {c['ttl_bad']} keys do not match: "
                            + "; ".join(c["examples"][:5]))
    if differ:
        failures.append(f"replica differs from primary: {differ[:5]}")

    # For the restart check: keys without TTL and absent keys, exactly.
    with open(os.path.join(a.work, "expected.json"), "w") as f:
        json.dump({k: (None if v is None else v[0]) for k, v in expected.items()
                   if v is None or (v != UNKNOWN and v[3] is None)}, f)

    verdict = "PASS" if not failures else "FAIL"
    say(f"soak: {verdict}" + ("" if not failures else ": " + " | ".join(failures)))
    print("\n".join(lines), flush=True)
    with open(a.summary, "a") as f:
        f.write("\n".join(lines) + "\n")
    return 0 if not failures else 1


def verify_restart(a):
    with open(os.path.join(a.work, "expected.json")) as f:
        expected = json.load(f)
    keys = sorted(expected)
    got, _ = read_all(a.addr, keys)
    bad = [k for k in keys if got[k] != expected[k]]
    present = sum(1 for k in keys if expected[k] is not None)
    line = (f"restart from --data-dir: {len(keys) - len(bad)}/{len(keys)} keys exact "
            f"({present} without TTL, {len(keys) - present} absent)"
            + (f"; wrong: {bad[:5]}" if bad else ""))
    print(line, flush=True)
    with open(a.summary, "a") as f:
        f.write(line + "\n")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["run", "verify-restart"])
    ap.add_argument("--addr", required=True)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--keys", type=int, default=50000)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--max-slope", type=float, default=2.0)
    ap.add_argument("--max-ratio", type=float, default=1.25)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--csv")
    ap.add_argument("--work", required=True)
    ap.add_argument("--data-dir")
    ap.add_argument("--summary", required=True)
    a = ap.parse_args()
    sys.exit(run(a) if a.mode == "run" else verify_restart(a))


if __name__ == "__main__":
    main()
