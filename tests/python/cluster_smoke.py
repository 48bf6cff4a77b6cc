#!/usr/bin/env python3
"""Drive a cluster with redis-py's RedisCluster, unchanged, as a user of another language would.

Usage: cluster_smoke.py HOST PORT
Exits non-zero (with the failing check printed) when anything is off.
"""
import random
import sys
import warnings
import time

from redis.cluster import RedisCluster, ClusterNode


def check(cond, what):
    if not cond:
        print("FAILED:", what)
        sys.exit(1)


def eventually(read, expected, replicas):
    """Read until the expected value shows up. Replica reads may lag behind the primary
    (replication is asynchronous), so with replicas a read is retried for up to 2 s;
    without replicas the first answer must be right."""
    got = read()
    deadline = time.time() + 2
    while replicas and got != expected and time.time() < deadline:
        time.sleep(0.05)
        got = read()
    return got


def main():
    warnings.simplefilter("ignore")
    host, port = sys.argv[1], int(sys.argv[2])
    for replicas in (False, True):
        kwargs = {"decode_responses": True, "socket_timeout": 5}
        if replicas:
            kwargs["read_from_replicas"] = True
        rc = RedisCluster(host=host, port=port, **kwargs)
        check(len(rc.get_primaries()) == 3, "3 primaries, got %r" % rc.get_primaries())
        tag = "%s-%x" % ("r" if replicas else "p", random.getrandbits(32))

        def key(suffix):
            return "py:%s:%s" % (tag, suffix)

        for i in range(200):
            check(rc.set(key(i), i), "SET")
        for i in range(200):
            v = eventually(lambda: rc.get(key(i)), str(i), replicas)
            check(v == str(i), "GET %s -> %r" % (key(i), v))
        check(rc.incr(key("counter")) == 1, "INCR")
        rc.hset(key("h"), mapping={"a": "1", "b": "2"})
        h = eventually(lambda: rc.hgetall(key("h")), {"a": "1", "b": "2"}, replicas)
        check(h == {"a": "1", "b": "2"}, "HGETALL -> %r" % h)
        rc.rpush(key("l"), "x", "y", "z")
        lst = eventually(lambda: rc.lrange(key("l"), 0, -1), ["x", "y", "z"], replicas)
        check(lst == ["x", "y", "z"], "LRANGE -> %r" % lst)
        m = eventually(lambda: rc.mget_nonatomic([key(1), key(2)]), ["1", "2"], replicas)
        check(m == ["1", "2"], "mget_nonatomic -> %r" % m)
        pipe = rc.pipeline()
        for i in range(50):
            pipe.set(key("pipe:%d" % i), i * 2)
        check(pipe.execute() == [True] * 50, "pipeline SETs")

        def pipelined_gets():
            pipe = rc.pipeline()
            for i in range(50):
                pipe.get(key("pipe:%d" % i))
            return pipe.execute()

        expected = [str(i * 2) for i in range(50)]
        out = eventually(pipelined_gets, expected, replicas)
        check(out == expected, "pipeline GETs: %r" % out)
        total = rc.dbsize(target_nodes=RedisCluster.PRIMARIES)
        check(total >= 200, "DBSIZE over all primaries: %r" % total)
        rc.close()
    print("python RedisCluster: ok")


if __name__ == "__main__":
    main()
