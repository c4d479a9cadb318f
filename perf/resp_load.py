#!/usr/bin/env python3
"""Writes N Redis SET commands as RESP to stdout, for `redis-cli --pipe`.

    python3 perf/resp_load.py N [TTL_SECONDS] | redis-cli -p PORT --pipe

Keys are k0 ... k{N-1} (short keys, 2 to 8 bytes), values 100 bytes of "v", each with
`EX TTL_SECONDS` when given. perf/memory.sh loads shardkv and redis-server with exactly these
bytes, so the two hold the same data.
"""
import sys


def main() -> None:
    n = int(sys.argv[1])
    ttl = sys.argv[2].encode() if len(sys.argv) > 2 and sys.argv[2] else b""
    value = b"v" * 100
    tail = b"$2\r\nEX\r\n$%d\r\n%s\r\n" % (len(ttl), ttl) if ttl else b""
    head = b"*5\r\n$3\r\nSET\r\n" if ttl else b"*3\r\n$3\r\nSET\r\n"
    out = sys.stdout.buffer
    batch = []
    for i in range(n):
        key = b"k%d" % i
        batch.append(b"%s$%d\r\n%s\r\n$100\r\n%s\r\n%s" % (head, len(key), key, value, tail))
        if len(batch) == 10000:
            out.write(b"".join(batch))
            batch = []
    out.write(b"".join(batch))


if __name__ == "__main__":
    main()
