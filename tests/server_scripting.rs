//! Lua scripting and functions on the bundled cluster: replies byte for byte against a real
//! redis-server 7 cluster, atomicity (a read-then-write rate limiter under concurrent load),
//! BUSY and SCRIPT KILL, cluster key checks, and replication of script effects.

mod support;

use std::net::SocketAddr;

use redcluster::resp::Value;
use redcluster::server::TestCluster;
use support::bundled::primary_and_replica;
use support::raw::{text, Client};
use support::real_cluster::RealCluster;
use support::wait::eventually;

/// The node of `addrs` that serves `key` (the others answer MOVED).
async fn owner(addrs: &[SocketAddr], key: &str) -> SocketAddr {
    for a in addrs {
        let mut c = Client::connect(*a).await;
        let reply = c.cmd_raw(&["EXISTS", key]).await;
        if !reply.starts_with(b"-MOVED") {
            return *a;
        }
    }
    panic!("no node serves {key}");
}

const LIB: &str = "#!lua name=lib1\n\
redis.register_function('setget', function(keys, args) redis.call('set', keys[1], args[1]) return redis.call('get', keys[1]) end)\n\
redis.register_function{function_name='reader', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}";

/// Commands whose replies must be identical, run in order on one connection to the node
/// serving `{s}` (every key below carries that tag).
fn cases() -> Vec<Vec<&'static str>> {
    let mut v: Vec<Vec<&'static str>> = vec![
        vec!["SCRIPT", "FLUSH"],
        vec!["FUNCTION", "FLUSH"],
        vec![
            "EVAL",
            "return redis.call('incr', KEYS[1], 'x')",
            "1",
            "{s}a",
        ],
        vec!["SET", "{s}str", "foo"],
        vec!["EVAL", "return redis.call('incr', KEYS[1])", "1", "{s}str"],
        vec!["EVAL", "return redis.pcall('incr', KEYS[1])", "1", "{s}str"],
        vec!["EVAL", "return redis.call('nosuch')", "0"],
        vec!["EVAL", "error('boom')", "0"],
        vec!["EVAL", "error({err='MY custom'})", "0"],
        vec!["EVAL", "return redis.error_reply('X y')", "0"],
        vec!["EVAL", "return redis.error_reply('nocode')", "0"],
        vec!["EVAL", "return redis.status_reply('FINE')", "0"],
        vec!["EVAL", "return {1,2,{3,'x'},nil,5}", "0"],
        vec!["EVAL", "return {1, {ok='x'}, {err='E y'}}", "0"],
        vec!["EVAL", "return 3.99", "0"],
        vec!["EVAL", "return {true, false, 1.5}", "0"],
        vec!["EVAL", "x = 1", "0"],
        vec!["EVAL", "return os", "0"],
        vec!["EVAL", "return io", "0"],
        vec!["EVAL", "return require", "0"],
        vec!["EVAL", "return loadfile", "0"],
        vec!["EVAL", "return dofile", "0"],
        vec!["EVAL", "return debug", "0"],
        vec!["EVAL", "syntax error here", "0"],
        vec!["EVAL", "return redis.call('eval','return 1',0)", "0"],
        vec!["EVAL_RO", "return redis.call('set','{s}a','b')", "0"],
        vec!["EVAL", "return redis.sha1hex('')", "0"],
        vec!["EVAL", "return redis.sha1hex()", "0"],
        vec!["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"],
        vec!["EVAL", "return redis.call()", "0"],
        vec!["EVAL", "return redis.call('get', {})", "0"],
        vec!["EVAL", "return redis.call('get')", "0"],
        vec![
            "EVAL",
            "local ok, e = pcall(function() redis.call('nosuch') end) return {tostring(ok), e}",
            "0",
        ],
        vec![
            "EVAL",
            "local ok, e = pcall(function() error('x') end) return {tostring(ok), e}",
            "0",
        ],
        vec!["EVAL", "redis.setresp(4)", "0"],
        vec!["EVAL", "return redis.set_repl(9)", "0"],
        vec!["EVAL", "return redis.log()", "0"],
        vec!["EVAL", "return redis.call('ping')", "0"],
        vec!["EVAL", "return {redis.REDIS_VERSION, _VERSION}", "0"],
        vec!["HSET", "{s}h", "f", "v", "g", "w"],
        vec![
            "EVAL",
            "redis.setresp(3) return redis.call('hgetall', KEYS[1])",
            "1",
            "{s}h",
        ],
        vec!["EVAL", "return redis.call('hgetall', KEYS[1])", "1", "{s}h"],
        vec!["EVAL", "return 1", "-1"],
        vec!["EVAL", "return 1", "5", "{s}a"],
        vec!["EVAL", "return 1", "x"],
        vec![
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('set', KEYS[1], 1)",
            "1",
            "{s}k",
        ],
        vec!["EVAL", "#!lua flags=bogus\nreturn 1", "0"],
        vec![
            "EVAL",
            "#!lua\nreturn redis.call('set', KEYS[1], 1)",
            "1",
            "{s}k",
        ],
        vec!["EVAL_RO", "#!lua\nreturn 1", "0"],
        vec![
            "EVAL",
            "return loadstring(string.dump(function() return 1 end))",
            "0",
        ],
        vec!["EVAL", "return tostring(nil + 1)", "0"],
        vec!["SCRIPT", "LOAD", "return 'hello'"],
        vec!["EVALSHA", "1b936e3fe509bcbc9cd0664897bbe8fd0cac101b", "0"],
        vec![
            "EVALSHA_RO",
            "1B936E3FE509BCBC9CD0664897BBE8FD0CAC101B",
            "0",
        ],
        vec![
            "SCRIPT",
            "EXISTS",
            "1b936e3fe509bcbc9cd0664897bbe8fd0cac101b",
            "ffff",
        ],
        vec!["SCRIPT", "FLUSH", "BOGUS"],
        vec!["SCRIPT", "KILL"],
        vec!["ZADD", "{s}z", "1", "a", "2.5", "b"],
        vec![
            "EVAL",
            "return redis.call('zrange', KEYS[1], 0, -1, 'withscores')",
            "1",
            "{s}z",
        ],
        vec![
            "EVAL",
            "redis.setresp(3) return redis.call('zrange', KEYS[1], 0, -1, 'withscores')",
            "1",
            "{s}z",
        ],
        vec![
            "EVAL",
            "redis.setresp(3) return redis.call('zscore', KEYS[1], 'b')",
            "1",
            "{s}z",
        ],
        vec![
            "EVAL",
            "redis.setresp(3) return redis.call('get', 'nokey{s}')",
            "0",
        ],
        vec!["EVAL", "return redis.call('get', 'nokey{s}')", "0"],
        vec!["EVAL", "return {double=3.5}", "0"],
        vec!["EVAL", "return {map={a=1}}", "0"],
        vec!["EVAL", "return {set={a=true}}", "0"],
        vec![
            "EVAL",
            "return cjson.encode({a='x/y', c=1.5, d=true, e=cjson.null})",
            "0",
        ],
        vec!["EVAL", "return cjson.encode({[1]=1,[20]=3})", "0"],
        vec!["EVAL", "return cjson.decode('[1,2')", "0"],
        vec![
            "EVAL",
            "return cjson.decode('{\"a\":[1,2,null,\"x\"]}').a[4]",
            "0",
        ],
        vec![
            "EVAL",
            "return {bit.band(0xff, 0x0f, 3), bit.tohex(-1, -4), bit.lshift(1, 31)}",
            "0",
        ],
        vec![
            "EVAL",
            "redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])",
            "1",
            "{s}n",
            "3.25",
        ],
    ];
    v.extend([
        vec!["FUNCTION", "LOAD", LIB],
        vec!["FUNCTION", "LOAD", LIB],
        vec!["FCALL", "setget", "1", "{s}f", "v1"],
        vec!["FCALL_RO", "reader", "1", "{s}f"],
        vec!["FCALL_RO", "setget", "1", "{s}f", "v2"],
        vec!["FCALL", "nope", "0"],
        vec!["FCALL", "setget", "x"],
        vec!["FCALL", "setget", "0"],
        vec!["FUNCTION", "LOAD", "#!lua name=bad\nerror('x')"],
        vec!["FUNCTION", "LOAD", "#!lua name=bad\nredis.call('ping')"],
        vec!["FUNCTION", "LOAD", "#!lua name=bad\nx ="],
        vec!["FUNCTION", "LOAD", "#!lua name=bad\nreturn 1"],
        vec!["FUNCTION", "LOAD", "return 1"],
        vec!["FUNCTION", "LOAD", "#!lua name=b x=1\n"],
        vec!["FUNCTION", "LOAD", "#!js name=b\n"],
        vec!["FUNCTION", "LOAD", "#!lua name=b3\nredis.register_function{function_name='g', callback=function() end, flags={'bogus'}}"],
        vec!["FUNCTION", "DELETE", "nope"],
        vec!["FUNCTION", "STATS"],
        vec!["FUNCTION", "DELETE", "lib1"],
        vec!["FUNCTION", "LIST"],
    ]);
    v
}

/// Run [`cases`] on `addr`; one raw reply per case (plus a RESP3 pass over the same cases).
async fn transcript(addr: SocketAddr) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for resp3 in [false, true] {
        let mut c = Client::connect(addr).await;
        if resp3 {
            c.cmd_raw(&["HELLO", "3"]).await;
        }
        for case in cases() {
            let reply = c.cmd_raw(&case).await;
            out.push((
                format!("resp3={resp3} {case:?}"),
                String::from_utf8_lossy(&reply).into_owned(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_and_functions_reply_like_redis_server() {
    let Some(real) = RealCluster::start(3, 0) else {
        return;
    };
    let real_addrs: Vec<SocketAddr> = real.nodes.iter().map(|n| n.addr()).collect();
    let bundled = TestCluster::builder().primaries(3).start().await.unwrap();
    let expected = transcript(owner(&real_addrs, "{s}").await).await;
    let got = transcript(owner(&bundled.seeds(), "{s}").await).await;
    let mut mismatches = Vec::new();
    for ((case, want), (_, have)) in expected.iter().zip(&got) {
        if want != have {
            mismatches.push(format!(
                "{case}\n  redis-server: {want:?}\n  bundled:      {have:?}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(expected.len(), got.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_must_be_local_and_in_one_slot() {
    let cluster = TestCluster::builder().primaries(3).start().await.unwrap();
    let seeds = cluster.seeds();
    let here = owner(&seeds, "{s}").await;
    let mut c = Client::connect(here).await;
    // A declared key served elsewhere is redirected before the script runs.
    let mut other_key = None;
    for k in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        if owner(&seeds, k).await != here {
            other_key = Some(k);
            break;
        }
    }
    if let Some(other_key) = other_key {
        let moved = c.text(&["EVAL", "return 1", "1", other_key]).await;
        assert!(moved.starts_with("MOVED "), "{moved}");
        // An undeclared key of another node is refused inside the script.
        let refused = c
            .text(&["EVAL", "return redis.call('get', ARGV[1])", "0", other_key])
            .await;
        assert!(
            refused.starts_with("ERR Script attempted to access a non local key in a cluster node"),
            "{refused}"
        );
    }
    let cross = c.text(&["EVAL", "return 1", "2", "{s}a", "{t}b"]).await;
    assert_eq!(
        cross,
        "CROSSSLOT Keys in request don't hash to the same slot"
    );
    // A key of this node in another slot: allowed without a shebang (Redis 6 behaviour),
    // refused for a script that declares flags.
    let mine = cluster
        .nodes()
        .into_iter()
        .find(|n| n.addr == here)
        .unwrap()
        .slots;
    let s_slot = redcluster::slot::key_slot(b"{s}");
    let neighbour = (0..10_000)
        .map(|i| format!("n{i}"))
        .find(|k| {
            let slot = redcluster::slot::key_slot(k.as_bytes());
            slot != s_slot && mine.iter().any(|r| r.contains(&slot))
        })
        .unwrap();
    let compat = c
        .text(&[
            "EVAL",
            "return redis.call('get', ARGV[1])",
            "1",
            "{s}a",
            &neighbour,
        ])
        .await;
    assert_eq!(compat, "(nil)");
    let strict = c
        .text(&[
            "EVAL",
            "#!lua\nreturn redis.call('get', ARGV[1])",
            "1",
            "{s}a",
            &neighbour,
        ])
        .await;
    assert!(
        strict.starts_with(
            "ERR Script attempted to access keys that do not hash to the same slot script: "
        ),
        "{strict}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_script_answers_busy_and_dies_by_script_kill() {
    let cluster = TestCluster::builder().primaries(1).start().await.unwrap();
    let addr = cluster.seeds()[0];
    let mut admin = Client::connect(addr).await;
    assert_eq!(
        admin
            .text(&["CONFIG", "SET", "busy-reply-threshold", "50"])
            .await,
        "OK"
    );
    assert_eq!(
        admin.text(&["SCRIPT", "KILL"]).await,
        "NOTBUSY No scripts in execution right now."
    );
    let mut runner = Client::connect(addr).await;
    runner.send(&["EVAL", "while true do end", "0"]).await;
    let mut other = Client::connect(addr).await;
    eventually("the node answers BUSY", || async move {
        let mut c = Client::connect(addr).await;
        c.text(&["GET", "k"]).await.starts_with("BUSY ")
    })
    .await;
    assert_eq!(
        other.text(&["PING"]).await,
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    );
    assert_eq!(
        other.text(&["FUNCTION", "KILL"]).await,
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    );
    assert_eq!(admin.text(&["SCRIPT", "KILL"]).await, "OK");
    let killed = text(&runner.read().await.unwrap());
    assert!(
        killed.starts_with("ERR Script killed by user with SCRIPT KILL... script: "),
        "{killed}"
    );
    assert_eq!(other.text(&["PING"]).await, "PONG");
    assert_eq!(runner.text(&["EVAL", "return 'alive'", "0"]).await, "alive");
    // A script that wrote cannot be killed; pcall cannot swallow a kill either.
    runner
        .send(&[
            "EVAL",
            "while true do pcall(function() while true do end end) end",
            "0",
        ])
        .await;
    eventually("busy again", || async move {
        let mut c = Client::connect(addr).await;
        c.text(&["PING"]).await.starts_with("BUSY ")
    })
    .await;
    assert_eq!(admin.text(&["SCRIPT", "KILL"]).await, "OK");
    assert!(text(&runner.read().await.unwrap()).starts_with("ERR Script killed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_effects_and_functions_reach_the_replica() {
    let cluster = primary_and_replica().await;
    let nodes = cluster.nodes();
    let primary = nodes
        .iter()
        .find(|n| n.role == redcluster::server::Role::Primary)
        .unwrap()
        .addr;
    let replica = nodes
        .iter()
        .find(|n| n.role == redcluster::server::Role::Replica)
        .unwrap()
        .addr;
    let mut p = Client::connect(primary).await;
    let script = "redis.call('set', KEYS[1], math.random()) redis.call('incr', KEYS[2]) \
                  return redis.call('get', KEYS[1])";
    let written = p.text(&["EVAL", script, "2", "{k}a", "{k}b"]).await;
    assert_eq!(p.text(&["FUNCTION", "LOAD", LIB]).await, "lib1");
    let reader = || async move {
        let mut c = Client::connect(replica).await;
        assert_eq!(c.text(&["READONLY"]).await, "OK");
        c
    };
    eventually("the replica has the script's effects", || {
        let w = written.clone();
        async move {
            let mut c = reader().await;
            c.text(&["GET", "{k}a"]).await == w && c.text(&["GET", "{k}b"]).await == "1"
        }
    })
    .await;
    eventually("the replica has the library", || async move {
        let mut c = reader().await;
        c.text(&["FCALL_RO", "reader", "1", "{k}a"]).await != "ERR Function not found"
    })
    .await;
    let mut r = reader().await;
    assert_eq!(r.text(&["FCALL_RO", "reader", "1", "{k}a"]).await, written);
    // Writes are refused on the replica, by flag or per call.
    assert_eq!(
        r.text(&["FCALL", "setget", "1", "{k}a", "x"]).await,
        "READONLY Can not run script with write flag on readonly replica"
    );
    let refused = r
        .text(&["EVAL", "return redis.call('set', KEYS[1], 1)", "1", "{k}a"])
        .await;
    assert!(
        refused.starts_with("READONLY You can't write against a read only replica."),
        "{refused}"
    );
}

/// A limiter that reads then writes: only atomic execution keeps it from admitting more
/// than its limit when many clients race.
const LIMITER: &str = "local n = tonumber(redis.call('get', KEYS[1]) or '0') \
    if n < tonumber(ARGV[1]) then redis.call('set', KEYS[1], n + 1) return 1 end return 0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_then_write_rate_limiter_never_over_admits() {
    let cluster = TestCluster::builder().primaries(3).start().await.unwrap();
    let client = redcluster::Client::builder(cluster.seeds())
        .build()
        .await
        .unwrap();
    let limit = 150;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut admitted = 0i64;
            for _ in 0..25 {
                let r: i64 = client
                    .cmd("EVAL")
                    .arg(LIMITER)
                    .arg(1)
                    .arg("limiter:{user1}")
                    .arg(limit)
                    .query()
                    .await
                    .unwrap();
                admitted += r;
            }
            admitted
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, limit);
    let count: Option<i64> = client.get("limiter:{user1}").await.unwrap();
    let count = count.unwrap();
    assert_eq!(count, limit);
}

/// A replica that resyncs in full gets the primary's libraries with the keyspace (loaded
/// while it was down), and FUNCTION DUMP/RESTORE carry them between nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_resync_brings_the_primarys_function_libraries() {
    let cluster = primary_and_replica().await;
    let nodes = cluster.nodes();
    let (primary, replica) = (nodes[0].addr, nodes[1].addr);
    let mut p = Client::connect(primary).await;
    cluster.kill_node(1).await;
    // Loaded while the replica is down: only the full resync can bring it.
    let lib2 = "#!lua name=lib2\nredis.register_function{function_name='two', \
                callback=function() return 2 end, flags={'no-writes'}}";
    assert_eq!(p.text(&["FUNCTION", "LOAD", lib2]).await, "lib2");
    let dump = p.cmd_raw(&["FUNCTION", "DUMP"]).await;
    cluster.restart_node(1, false).await.unwrap();
    eventually("the resynced replica has lib2", || async move {
        let mut c = Client::connect(replica).await;
        c.text(&["READONLY"]).await;
        c.text(&["FCALL_RO", "two", "0"]).await == "2"
    })
    .await;
    let mut r = Client::connect(replica).await;
    assert_eq!(r.cmd_raw(&["FUNCTION", "DUMP"]).await, dump);
    // FUNCTION DUMP / RESTORE: the payload restores what was flushed, and replicates.
    let Value::BulkString(payload) = p.cmd(&["FUNCTION", "DUMP"]).await else {
        panic!("FUNCTION DUMP")
    };
    // The payload is binary: sent as a raw RESP command.
    let restore = |payload: &[u8]| {
        let mut cmd = b"*3\r\n$8\r\nFUNCTION\r\n$7\r\nRESTORE\r\n".to_vec();
        cmd.extend_from_slice(format!("${}\r\n", payload.len()).as_bytes());
        cmd.extend_from_slice(payload);
        cmd.extend_from_slice(b"\r\n");
        cmd
    };
    assert_eq!(p.text(&["FUNCTION", "FLUSH"]).await, "OK");
    eventually("the replica flushed its libraries", || async move {
        let mut c = Client::connect(replica).await;
        c.cmd(&["FUNCTION", "LIST"]).await == Value::Array(vec![])
    })
    .await;
    p.send_raw(&restore(&payload)).await;
    assert_eq!(text(&p.read().await.unwrap()), "OK");
    p.send_raw(&restore(&payload)).await;
    assert_eq!(
        text(&p.read().await.unwrap()),
        "ERR Library lib2 already exists"
    );
    assert_eq!(p.text(&["FCALL", "two", "0"]).await, "2");
    eventually("the restored library reaches the replica", || async move {
        let mut c = Client::connect(replica).await;
        c.text(&["READONLY"]).await;
        c.text(&["FCALL_RO", "two", "0"]).await == "2"
    })
    .await;
}
