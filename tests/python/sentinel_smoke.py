"""The Python `redis` package's Sentinel client, unchanged, against the Sentinels on the
given ports: discover the primary, write through master_for, read through slave_for."""
import sys
import time

from redis.sentinel import Sentinel

ports = [int(p) for p in sys.argv[1].split(",")]
sentinel = Sentinel([("127.0.0.1", p) for p in ports], socket_timeout=2)
host, port = sentinel.discover_master("mymaster")
print("primary", host, port)
replicas = sentinel.discover_slaves("mymaster")
print("replicas", replicas)
assert replicas, "no replica discovered"

primary = sentinel.master_for("mymaster", socket_timeout=2)
primary.set("py:sentinel", "hello")
assert primary.get("py:sentinel") == b"hello"

replica = sentinel.slave_for("mymaster", socket_timeout=2)
deadline = time.time() + 10
while replica.get("py:sentinel") != b"hello":
    assert time.time() < deadline, "the replica never showed the write"
    time.sleep(0.05)
role = replica.execute_command("ROLE")
assert role[0] in (b"slave", "slave"), role
print("python sentinel: ok")
