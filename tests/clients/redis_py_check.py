"""redis-py against a RESP server: connect (RESP3), SET/GET/TTL, a pipeline, and MULTI/EXEC
with a WATCH conflict made by a second connection. Run by tests/resp_clients.rs as
`python redis_py_check.py HOST PORT`; prints "redis-py ok <version>" and exits 0 on success,
exits non-zero with the failed assertion otherwise.
"""

import sys

import redis


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    r = redis.Redis(host=host, port=port, protocol=3, socket_timeout=10)
    assert r.ping() is True
    assert r.flushall() is True
    assert r.set("py:a", "b") is True
    assert r.get("py:a") == b"b", r.get("py:a")
    assert r.set("py:t", "v", ex=100) is True
    ttl = r.ttl("py:t")
    assert 98 <= ttl <= 100, ttl
    assert r.ttl("py:a") == -1
    assert r.ttl("py:none") == -2
    assert r.get("py:none") is None

    pipe = r.pipeline(transaction=False)
    pipe.set("py:n", 1).incr("py:n").incrby("py:n", 10).get("py:n").delete("py:n", "py:none")
    assert pipe.execute() == [True, 2, 12, b"12", 1]

    # MULTI/EXEC that succeeds.
    with r.pipeline(transaction=True) as tx:
        tx.set("py:w", "1").incr("py:w")
        assert tx.execute() == [True, 2]

    # WATCH, a second connection changes the key, EXEC returns nil: redis-py raises.
    other = redis.Redis(host=host, port=port, protocol=3, socket_timeout=10)
    with r.pipeline(transaction=True) as tx:
        tx.watch("py:w")
        assert tx.get("py:w") == b"2"
        other.set("py:w", "changed")
        tx.multi()
        tx.set("py:w", "mine")
        try:
            tx.execute()
            raise AssertionError("EXEC after a WATCH conflict should have been aborted")
        except redis.WatchError:
            pass
    assert r.get("py:w") == b"changed"
    print("redis-py ok", redis.__version__)


if __name__ == "__main__":
    main()
