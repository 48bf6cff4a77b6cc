#!/usr/bin/env python3
"""redis-py's client-side caching (RESP3 + CLIENT TRACKING) against a cluster (unchanged but
for its version gate, see below).

Usage: client_cache.py HOST PORT
A RedisCluster with a cache reads a key (a miss, then a hit served from its own memory: the
node's GET count does not move), another client writes the key, the invalidation push empties
the cached entry, and the next read returns the new value. Exits non-zero (with the failing
check printed) when anything is off.
"""
import sys
import time

from redis.cache import CacheConfig, DefaultCache
from redis.cluster import RedisCluster
from redis.connection import CacheProxyConnection

# redis-py 8 refuses client-side caching below Redis 7.4 by policy (a version check on the
# HELLO reply; real redis-server 7.0.15 is refused the same way), although the protocol it
# uses (HELLO 3, CLIENT TRACKING on, `invalidate` pushes) is Redis 6's. Lower the gate to the
# version both servers report; nothing else in the client is changed.
CacheProxyConnection.MIN_ALLOWED_VERSION = "7.0.0"


def check(cond, what):
    if not cond:
        print("FAILED:", what)
        sys.exit(1)


def get_calls(client, key):
    """cmdstat_get calls on the node serving `key`."""
    node = client.get_node_from_key(key)
    stats = client.info("commandstats", target_nodes=node)
    return stats.get("cmdstat_get", {}).get("calls", 0)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    cache = DefaultCache(CacheConfig(max_size=1000))
    cached = RedisCluster(host=host, port=port, protocol=3, cache=cache)
    plain = RedisCluster(host=host, port=port)
    key = "py:cache:{k}"
    plain.set(key, "v1")

    check(cached.get(key) == b"v1", "first read")
    check(cache.size == 1, f"one cached entry after the first read, got {cache.size}")
    before = get_calls(plain, key)
    for _ in range(5):
        check(cached.get(key) == b"v1", "cached read")
    after = get_calls(plain, key)
    # The INFO call itself is not a GET: the count moves only if a read reached the node.
    check(after == before, f"cached reads reached the node: GET calls {before} -> {after}")

    plain.set(key, "v2")
    # The invalidation is a push on the caching connection: redis-py reads it before its
    # next command on that connection; allow it a moment to arrive.
    deadline = time.time() + 5
    value = cached.get(key)
    while value != b"v2" and time.time() < deadline:
        time.sleep(0.02)
        value = cached.get(key)
    check(value == b"v2", f"read after another client's write: {value!r}")
    check(cache.size == 1, "the new value is cached again")
    print("python client-side cache: ok")


if __name__ == "__main__":
    main()
