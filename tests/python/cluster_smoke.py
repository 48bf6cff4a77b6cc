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
        for i in range(200):
            check(rc.set("py:%s:%d" % (tag, i), i), "SET")
        for i in range(200):
            v = rc.get("py:%s:%d" % (tag, i))
            # Replica reads may lag a moment behind the primary; a miss is retried once.
            if v is None and replicas:
                time.sleep(0.2)
                v = rc.get("py:%s:%d" % (tag, i))
            check(v == str(i), "GET py:%s:%d -> %r" % (tag, i, v))
        check(rc.incr("py:%s:counter" % tag) == 1, "INCR")
        rc.hset("py:%s:h" % tag, mapping={"a": "1", "b": "2"})
        check(rc.hgetall("py:%s:h" % tag) == {"a": "1", "b": "2"}, "HGETALL")
        rc.rpush("py:%s:l" % tag, "x", "y", "z")
        check(rc.lrange("py:%s:l" % tag, 0, -1) == ["x", "y", "z"], "LRANGE")
        check(rc.mget_nonatomic(["py:%s:1" % tag, "py:%s:2" % tag]) == ["1", "2"], "mget_nonatomic")
        pipe = rc.pipeline()
        for i in range(50):
            pipe.set("py:%s:pipe:%d" % (tag, i), i * 2)
        check(pipe.execute() == [True] * 50, "pipeline SETs")
        if replicas:
            time.sleep(0.3)  # replication is asynchronous: let replicas catch up
        pipe = rc.pipeline()
        for i in range(50):
            pipe.get("py:%s:pipe:%d" % (tag, i))
        out = pipe.execute()
        check(out == [str(i * 2) for i in range(50)], "pipeline GETs: %r" % out)
        total = rc.dbsize(target_nodes=RedisCluster.PRIMARIES)
        check(total >= 200, "DBSIZE over all primaries: %r" % total)
        rc.close()
    print("python RedisCluster: ok")


if __name__ == "__main__":
    main()
