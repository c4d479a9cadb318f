#!/usr/bin/env python3
"""Replays a cache trace against a RESP server and prints its hit ratio.

    python3 perf/hitratio.py --port 6379 --trace zipf --keys 100000 --requests 1000000 --seed 1

The client behaves as a cache's user does: GET the key; on a miss, SET it (a VALUE_BYTES value).
The server's maxmemory and policy decide what stays, so the hit ratio measures the eviction
policy. Traces (deterministic for a seed, so two servers see the same one):

- zipf: every request draws a key from Zipf(ALPHA) over KEYS keys (rank 1 the hottest; ranks
  are shuffled over the key names so hot keys are spread over the key space).
- scan: the zipf trace, with a one-off sequential scan of SCAN_KEYS keys that are never
  requested again inserted at the middle: it pollutes an LRU cache with cold keys, which an
  LFU cache should resist.

Requests go in pipelined batches of BATCH GETs, then one pipelined batch of SETs for the misses
(the order inside a batch therefore differs slightly from the trace: a key missed twice in one
batch is set twice). Hits are counted after the first WARMUP fraction of requests. Prints one
JSON object: hits, gets, hit_ratio, dbsize, used_memory, evicted_keys (from INFO when the server
reports them). Uses only the standard library.
"""

import argparse
import bisect
import json
import random
import socket
import sys


def zipf_cdf(n: int, alpha: float) -> list:
    total = 0.0
    cdf = []
    for rank in range(1, n + 1):
        total += 1.0 / rank**alpha
        cdf.append(total)
    return [c / total for c in cdf]


def trace(args) -> list:
    rng = random.Random(args.seed)
    cdf = zipf_cdf(args.keys, args.alpha)
    names = list(range(args.keys))
    rng.shuffle(names)
    requests = [names[min(bisect.bisect_left(cdf, rng.random()), args.keys - 1)] for _ in range(args.requests)]
    if args.trace == "scan":
        middle = len(requests) // 2
        scan = list(range(args.keys, args.keys + args.scan_keys))
        requests = requests[:middle] + scan + requests[middle:]
    return requests


class Resp:
    """A minimal RESP2 client: enough for GET, SET, INFO, DBSIZE replies."""

    def __init__(self, host: str, port: int):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, commands: list) -> None:
        out = []
        for command in commands:
            out.append(b"*%d\r\n" % len(command))
            for arg in command:
                out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
        self.sock.sendall(b"".join(out))

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exactly(n)
        if kind == b":":
            return int(rest)
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode(errors="replace"))
        raise RuntimeError(f"unexpected reply {line!r}")

    def call(self, *command):
        self.send([list(command)])
        return self.reply()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--trace", choices=["zipf", "scan"], default="zipf")
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--requests", type=int, default=1_000_000)
    p.add_argument("--alpha", type=float, default=0.99)
    p.add_argument("--scan-keys", type=int, default=0, help="scan trace: keys in the scan (default KEYS / 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--value-bytes", type=int, default=100)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--warmup", type=float, default=0.1)
    args = p.parse_args()
    if args.scan_keys == 0:
        args.scan_keys = args.keys // 2

    requests = trace(args)
    conn = Resp(args.host, args.port)
    value = b"v" * args.value_bytes
    warm = int(len(requests) * args.warmup)
    hits = gets = 0
    for start in range(0, len(requests), args.batch):
        batch = [b"k%d" % k for k in requests[start : start + args.batch]]
        conn.send([[b"GET", key] for key in batch])
        misses = []
        for i, key in enumerate(batch):
            found = conn.reply() is not None
            if start + i >= warm:
                gets += 1
                hits += found
            if not found:
                misses.append(key)
        if misses:
            conn.send([[b"SET", key, value] for key in misses])
            for _ in misses:
                conn.reply()
    info = conn.call(b"INFO").decode(errors="replace")
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    result = {
        "trace": args.trace,
        "keys": args.keys,
        "requests": len(requests),
        "seed": args.seed,
        "hits": hits,
        "gets": gets,
        "hit_ratio": hits / gets if gets else 0.0,
        "dbsize": conn.call(b"DBSIZE"),
        "used_memory": int(fields["used_memory"]) if "used_memory" in fields else None,
        "evicted_keys": int(fields["evicted_keys"]) if "evicted_keys" in fields else None,
        "maxmemory_policy": fields.get("maxmemory_policy"),
    }
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
