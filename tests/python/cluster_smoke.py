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


def check_data_families(rc, key):
    """Streams with a consumer group, HyperLogLog, geo and BITFIELD through redis-py's own
    helpers (what a backend's job queue, visitor counts and store search call)."""
    s = key("{fam}stream")
    ids = [rc.xadd(s, {"job": str(i)}) for i in range(5)]
    check(all(ids), "XADD ids %r" % ids)
    check(rc.xgroup_create(s, "workers", id="0"), "XGROUP CREATE")
    got = rc.xreadgroup("workers", "w1", {s: ">"}, count=3, block=100)
    check(len(got) == 1 and [e[0] for e in got[0][1]] == ids[:3], "XREADGROUP -> %r" % got)
    check(rc.xack(s, "workers", ids[0]) == 1, "XACK")
    pending = rc.xpending(s, "workers")
    check(pending["pending"] == 2 and pending["min"] == ids[1], "XPENDING -> %r" % pending)
    claimed = rc.xautoclaim(s, "workers", "w2", min_idle_time=0, start_id="0-0")
    check([e[0] for e in claimed[1]] == ids[1:3], "XAUTOCLAIM -> %r" % (claimed,))
    check(rc.xlen(s) == 5 and len(rc.xrange(s)) == 5, "XLEN/XRANGE")
    h = key("{fam}hll")
    rc.pfadd(h, *["visitor:%d" % i for i in range(1000)])
    n = rc.pfcount(h)
    check(980 <= n <= 1020, "PFCOUNT ~1000 -> %r" % n)
    g = key("{fam}geo")
    rc.geoadd(g, [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"])
    near = rc.geosearch(g, longitude=15, latitude=37, radius=200, unit="km", sort="ASC")
    check(near == ["Catania", "Palermo"], "GEOSEARCH -> %r" % near)
    b = key("{fam}bits")
    res = rc.bitfield(b).set("u8", 0, 200).incrby("u8", 0, 100, overflow="SAT").get("i8", 0).execute()
    check(res == [0, 255, -1], "BITFIELD -> %r" % res)


def scripting_checks(rc, key):
    """register_script (EVALSHA, loading on NOSCRIPT), function_load and fcall/fcall_ro."""
    rc.script_flush()
    limiter = rc.register_script(
        "local n = tonumber(redis.call('get', KEYS[1]) or '0') "
        "if n < tonumber(ARGV[1]) then redis.call('set', KEYS[1], n + 1) return 1 end return 0"
    )
    admitted = sum(limiter(keys=[key("limiter")], args=[3]) for _ in range(5))
    check(admitted == 3, "register_script limiter admitted %r of 5 (limit 3)" % admitted)
    check(rc.get(key("limiter")) == "3", "limiter counter")
    echo = rc.register_script("return {KEYS[1], ARGV[1]}")
    check(echo(keys=[key("e")], args=["a"]) == [key("e"), "a"], "register_script echo")
    lib = (
        "#!lua name=pysmoke\n"
        "redis.register_function('py_incr', function(keys, args) "
        "return redis.call('incrby', keys[1], args[1]) end)\n"
        "redis.register_function{function_name='py_get', callback=function(keys) "
        "return redis.call('get', keys[1]) end, flags={'no-writes'}}"
    )
    loaded = rc.function_load(lib, replace=True)
    # RedisCluster loads a library on every primary and answers per node.
    names = set(loaded.values()) if isinstance(loaded, dict) else {loaded}
    check(names == {"pysmoke"}, "function_load -> %r" % loaded)
    check(rc.fcall("py_incr", 1, key("fn"), 5) == 5, "fcall py_incr")
    check(rc.fcall("py_incr", 1, key("fn"), 2) == 7, "fcall py_incr again")
    check(rc.fcall_ro("py_get", 1, key("fn")) == "7", "fcall_ro py_get")
    try:
        rc.fcall_ro("py_incr", 1, key("fn"), 1)
        check(False, "fcall_ro of a writing function must fail")
    except Exception as e:  # redis.exceptions.ResponseError
        check("write flag" in str(e), "fcall_ro refusal: %s" % e)


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
        if not replicas:
            check_data_families(rc, key)
            scripting_checks(rc, key)
        total = rc.dbsize(target_nodes=RedisCluster.PRIMARIES)
        check(total >= 200, "DBSIZE over all primaries: %r" % total)
        rc.close()
    print("python RedisCluster: ok")


if __name__ == "__main__":
    main()
