//! Connection and server commands of the bundled cluster, over real TCP, with the replies and
//! errors Redis 7.0 gives.

mod support;

use redcluster::resp::Value;
use redcluster::server::TestCluster;
use support::raw::{text, Client};

async fn one_node() -> (TestCluster, Client) {
    let cluster = TestCluster::builder().primaries(1).start().await.unwrap();
    let client = Client::connect(cluster.seeds()[0]).await;
    (cluster, client)
}

#[tokio::test]
async fn ping_echo_select_and_errors_keep_the_connection_usable() {
    let (_cluster, mut c) = one_node().await;
    assert_eq!(c.cmd_raw(&["PING"]).await, b"+PONG\r\n");
    assert_eq!(c.cmd_raw(&["PING", "hi"]).await, b"$2\r\nhi\r\n");
    assert_eq!(c.cmd_raw(&["ECHO", "x y"]).await, b"$3\r\nx y\r\n");
    assert_eq!(c.cmd_raw(&["SELECT", "0"]).await, b"+OK\r\n");
    assert_eq!(
        c.text(&["SELECT", "1"]).await,
        "ERR SELECT is not allowed in cluster mode"
    );
    assert_eq!(
        c.text(&["FOO", "a", "b"]).await,
        "ERR unknown command 'FOO', with args beginning with: 'a' 'b' "
    );
    assert_eq!(
        c.text(&["GET", "a", "b"]).await,
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        c.text(&["CLUSTER", "INFO", "x"]).await,
        "ERR wrong number of arguments for 'cluster|info' command"
    );
    assert_eq!(
        c.text(&["cluster", "nosuch"]).await,
        "ERR unknown subcommand 'nosuch'. Try CLUSTER HELP."
    );
    assert_eq!(
        c.text(&["CLUSTER"]).await,
        "ERR wrong number of arguments for 'cluster' command"
    );
    assert_eq!(c.cmd_raw(&["PING"]).await, b"+PONG\r\n");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (_cluster, mut c) = one_node().await;
    let mut batch = Vec::new();
    for i in 0..200 {
        batch.extend_from_slice(
            format!("*2\r\n$4\r\nECHO\r\n${}\r\n{i}\r\n", i.to_string().len()).as_bytes(),
        );
    }
    batch.extend_from_slice(b"PING\r\n");
    c.send_raw(&batch).await;
    for i in 0..200 {
        assert_eq!(text(&c.read().await.unwrap()), i.to_string());
    }
    assert_eq!(c.read().await.unwrap(), Value::simple("PONG"));
}

#[tokio::test]
async fn malformed_frames_get_a_protocol_error_then_close() {
    let (cluster, _c) = one_node().await;
    let cases: &[(&[u8], &str)] = &[
        (b"*a\r\n", "ERR Protocol error: invalid multibulk length"),
        (
            b"*2\r\n$3\r\nget\r\n$99999999999\r\n",
            "ERR Protocol error: invalid bulk length",
        ),
        (
            b"PING \"a\r\n",
            "ERR Protocol error: unbalanced quotes in request",
        ),
        (b"*1\r\n:3\r\n", "ERR Protocol error: expected '$', got ':'"),
    ];
    for (bytes, error) in cases {
        let mut c = Client::connect(cluster.seeds()[0]).await;
        c.send_raw(b"PING\r\n").await;
        c.send_raw(bytes).await;
        assert_eq!(c.read().await.unwrap(), Value::simple("PONG"));
        assert_eq!(text(&c.read().await.unwrap()), *error, "{bytes:?}");
        assert_eq!(c.read().await, None, "closed after {bytes:?}");
    }
}

#[tokio::test]
async fn hello_switches_protocol_and_returns_the_redis_7_map() {
    let (_cluster, mut c) = one_node().await;
    let raw = c.cmd_raw(&["HELLO", "3"]).await;
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "$4\r\nmode\r\n$7\r\ncluster\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
        ),
        "{text}"
    );
    // RESP3 now: a missing key is `_`, CONFIG GET a map.
    assert_eq!(c.cmd_raw(&["GET", "nokey"]).await, b"_\r\n");
    assert_eq!(
        c.cmd_raw(&["CONFIG", "GET", "appendonly"]).await,
        b"%1\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"
    );
    let raw = c.cmd_raw(&["HELLO", "2", "SETNAME", "me"]).await;
    assert!(raw.starts_with(b"*14\r\n"));
    assert_eq!(c.text(&["CLIENT", "GETNAME"]).await, "me");
    assert_eq!(
        c.text(&["HELLO", "4"]).await,
        "NOPROTO unsupported protocol version"
    );
    assert_eq!(
        c.text(&["HELLO", "3", "BOGUS"]).await,
        "ERR Syntax error in HELLO option 'BOGUS'"
    );
}

#[tokio::test]
async fn auth_with_requirepass_and_named_users() {
    let cluster = TestCluster::builder()
        .primaries(1)
        .requirepass("secret")
        .user("app", "apppass")
        .start()
        .await
        .unwrap();
    let addr = cluster.seeds()[0];
    let mut c = Client::connect(addr).await;
    assert_eq!(
        c.text(&["GET", "k"]).await,
        "NOAUTH Authentication required."
    );
    assert_eq!(
        c.text(&["FOO"]).await,
        "ERR unknown command 'FOO', with args beginning with: "
    );
    assert_eq!(
        c.text(&["HELLO", "3"]).await,
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
    );
    assert_eq!(
        c.text(&["AUTH", "wrong"]).await,
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(c.text(&["AUTH", "secret"]).await, "OK");
    assert_eq!(c.text(&["PING"]).await, "PONG");

    let mut c = Client::connect(addr).await;
    assert_eq!(
        c.text(&["AUTH", "app", "nope"]).await,
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(c.text(&["AUTH", "app", "apppass"]).await, "OK");
    assert_eq!(c.text(&["PING"]).await, "PONG");

    let mut c = Client::connect(addr).await;
    assert!(matches!(
        c.cmd(&["HELLO", "3", "AUTH", "default", "secret", "SETNAME", "x"])
            .await,
        Value::Map(_)
    ));
    assert_eq!(c.text(&["CLIENT", "GETNAME"]).await, "x");
    // RESET logs the connection out again.
    assert_eq!(c.text(&["RESET"]).await, "RESET");
    assert_eq!(c.text(&["PING"]).await, "NOAUTH Authentication required.");
}

#[tokio::test]
async fn auth_without_a_password_configured() {
    let (_cluster, mut c) = one_node().await;
    assert_eq!(
        c.text(&["AUTH", "x"]).await,
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    );
}

#[tokio::test]
async fn client_subcommands() {
    let (_cluster, mut c) = one_node().await;
    assert!(matches!(c.cmd(&["CLIENT", "ID"]).await, Value::Integer(n) if n > 0));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]).await, Value::Null);
    assert_eq!(
        c.text(&["CLIENT", "SETNAME", "a b"]).await,
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    assert_eq!(c.text(&["CLIENT", "SETNAME", "web1"]).await, "OK");
    assert_eq!(
        c.text(&["CLIENT", "SETINFO", "LIB-NAME", "redcluster"])
            .await,
        "OK"
    );
    assert_eq!(
        c.text(&["CLIENT", "SETINFO", "LIB-VER", "0.1.0"]).await,
        "OK"
    );
    assert_eq!(c.text(&["CLIENT", "NO-EVICT", "on"]).await, "OK");
    assert_eq!(c.text(&["CLIENT", "NO-TOUCH", "on"]).await, "OK");
    let info = c.text(&["CLIENT", "INFO"]).await;
    assert!(info.contains(" name=web1 "), "{info}");
    assert!(info.contains("lib-name=redcluster lib-ver=0.1.0"), "{info}");
}

#[tokio::test]
async fn info_sections_and_commandstats_count_executions() {
    let (_cluster, mut c) = one_node().await;
    for _ in 0..3 {
        c.cmd(&["GET", "k"]).await;
    }
    c.cmd(&["GET", "k", "extra"]).await;
    let info = c.text(&["INFO"]).await;
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# Cluster",
        "# Keyspace",
    ] {
        assert!(info.contains(section), "{section} missing");
    }
    assert!(info.contains("redis_version:7.0.15\r\n"));
    assert!(info.contains("cluster_enabled:1\r\n"));
    assert!(!info.contains("# Commandstats"));
    let stats = c.text(&["INFO", "commandstats"]).await;
    assert!(stats.contains("cmdstat_get:calls=3,"), "{stats}");
    assert!(stats.contains("rejected_calls=1,"), "{stats}");
    let all = c.text(&["INFO", "all"]).await;
    assert!(all.contains("# Commandstats") && all.contains("# Replication"));
    c.cmd(&["SET", "k", "v"]).await;
    let ks = c.text(&["INFO", "keyspace"]).await;
    assert!(ks.contains("db0:keys=1,expires=0"), "{ks}");
}

#[tokio::test]
async fn config_get_and_set() {
    let (_cluster, mut c) = one_node().await;
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "save"]).await,
        Value::Array(vec![Value::bulk("save"), Value::bulk("")])
    );
    let v = c
        .cmd(&["CONFIG", "GET", "cluster-node-timeout", "maxmemory"])
        .await;
    assert_eq!(
        v,
        Value::Array(vec![
            Value::bulk("cluster-node-timeout"),
            Value::bulk("1000"),
            Value::bulk("maxmemory"),
            Value::bulk("0")
        ])
    );
    assert_eq!(c.text(&["CONFIG", "SET", "maxmemory", "100mb"]).await, "OK");
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxmemory"]).await,
        Value::Array(vec![Value::bulk("maxmemory"), Value::bulk("100mb")])
    );
    assert_eq!(
        c.text(&["CONFIG", "SET", "nosuch", "1"]).await,
        "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"
    );
}

#[tokio::test]
async fn command_replies_match_redis_7() {
    let (_cluster, mut c) = one_node().await;
    // Byte for byte what redis-server 7.0.15 answers for GET.
    assert_eq!(
        c.cmd_raw(&["COMMAND", "INFO", "get"]).await,
        b"*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n"
    );
    assert_eq!(
        c.cmd(&["COMMAND", "INFO", "nosuchcmd"]).await,
        Value::Array(vec![Value::Null])
    );
    let Value::Integer(count) = c.cmd(&["COMMAND", "COUNT"]).await else {
        panic!("COMMAND COUNT is an integer")
    };
    let Value::Array(all) = c.cmd(&["COMMAND"]).await else {
        panic!("COMMAND is an array")
    };
    assert_eq!(all.len() as i64, count);
    assert!(all
        .iter()
        .all(|e| matches!(e, Value::Array(f) if f.len() == 10)));
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "SET", "k", "v"]).await,
        Value::Array(vec![Value::bulk("k")])
    );
    assert_eq!(
        c.text(&["COMMAND", "GETKEYS", "PING", "x"]).await,
        "ERR The command has no key arguments"
    );
}

#[tokio::test]
async fn multi_exec_discard_and_watch() {
    let (_cluster, mut c) = one_node().await;
    assert_eq!(c.text(&["MULTI"]).await, "OK");
    assert_eq!(c.text(&["SET", "{t}a", "1"]).await, "QUEUED");
    assert_eq!(c.text(&["GET", "{t}a"]).await, "QUEUED");
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        Value::Array(vec![Value::ok(), Value::bulk("1")])
    );
    // A queued error aborts the transaction.
    c.cmd(&["MULTI"]).await;
    assert_eq!(
        c.text(&["GET", "a", "b"]).await,
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        c.text(&["EXEC"]).await,
        "EXECABORT Transaction discarded because of previous errors."
    );
    // Keys of a transaction must share a slot.
    c.cmd(&["MULTI"]).await;
    c.cmd(&["SET", "a", "1"]).await;
    c.cmd(&["SET", "b", "1"]).await;
    assert_eq!(
        c.text(&["EXEC"]).await,
        "CROSSSLOT Keys in request don't hash to the same slot"
    );
    assert_eq!(c.text(&["EXEC"]).await, "ERR EXEC without MULTI");
    assert_eq!(c.text(&["DISCARD"]).await, "ERR DISCARD without MULTI");
    c.cmd(&["MULTI"]).await;
    assert_eq!(
        c.text(&["MULTI"]).await,
        "ERR MULTI calls can not be nested"
    );
    assert_eq!(c.text(&["DISCARD"]).await, "OK");

    // WATCH: a change by another client makes EXEC return a null array.
    let mut other = Client::connect(_cluster.seeds()[0]).await;
    c.cmd(&["WATCH", "{t}a"]).await;
    other.cmd(&["SET", "{t}a", "2"]).await;
    c.cmd(&["MULTI"]).await;
    c.cmd(&["SET", "{t}a", "3"]).await;
    assert_eq!(c.cmd(&["EXEC"]).await, Value::NullArray);
    assert_eq!(c.text(&["GET", "{t}a"]).await, "2");
    // Untouched watched key: EXEC runs.
    c.cmd(&["WATCH", "{t}a"]).await;
    c.cmd(&["MULTI"]).await;
    c.cmd(&["SET", "{t}a", "4"]).await;
    assert_eq!(c.cmd(&["EXEC"]).await, Value::Array(vec![Value::ok()]));
}

#[tokio::test]
async fn quit_replies_then_closes() {
    let (_cluster, mut c) = one_node().await;
    assert_eq!(c.text(&["QUIT"]).await, "OK");
    assert_eq!(c.read().await, None);
}

#[tokio::test]
async fn big_values_and_inline_limits() {
    let (_cluster, mut c) = one_node().await;
    let big = "x".repeat(8 * 1024 * 1024);
    assert_eq!(c.text(&["SET", "big", &big]).await, "OK");
    assert_eq!(c.text(&["GET", "big"]).await.len(), big.len());
    // An inline request longer than 64 KiB is refused, then the connection closes.
    let mut line = vec![b'a'; 70 * 1024];
    line.extend_from_slice(b"\r\n");
    c.send_raw(&line).await;
    assert_eq!(
        text(&c.read().await.unwrap()),
        "ERR Protocol error: too big inline request"
    );
    assert_eq!(c.read().await, None);
}

#[tokio::test]
async fn client_list_and_kill() {
    let (cluster, mut c) = one_node().await;
    let mut other = Client::connect(cluster.seeds()[0]).await;
    assert_eq!(other.text(&["CLIENT", "SETNAME", "victim"]).await, "OK");
    let Value::Integer(victim) = other.cmd(&["CLIENT", "ID"]).await else {
        panic!("id")
    };
    let list = c.text(&["CLIENT", "LIST"]).await;
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains(&format!("id={victim} ")) && list.contains(" name=victim "));
    assert_eq!(
        c.cmd(&["CLIENT", "KILL", "ID", &victim.to_string()]).await,
        Value::Integer(1)
    );
    assert_eq!(
        other.read().await,
        None,
        "the killed client is disconnected"
    );
    assert_eq!(
        c.text(&["CLIENT", "KILL", "127.0.0.1:1"]).await,
        "ERR No such client"
    );
    assert_eq!(c.text(&["PING"]).await, "PONG");
}

#[tokio::test]
async fn pipelines_keep_order_across_protocol_switches_and_wait() {
    let (_cluster, mut c) = one_node().await;
    c.send_raw(b"PING\r\nHELLO 3\r\nGET nokey\r\nSET a 1\r\nWAIT 0 100\r\nGET a\r\nHELLO 2\r\nGET nokey\r\n")
        .await;
    assert_eq!(c.read_raw().await, b"+PONG\r\n");
    assert!(c.read_raw().await.starts_with(b"%7\r\n"));
    assert_eq!(c.read_raw().await, b"_\r\n");
    assert_eq!(c.read_raw().await, b"+OK\r\n");
    assert_eq!(c.read_raw().await, b":0\r\n");
    assert_eq!(c.read_raw().await, b"$1\r\n1\r\n");
    assert!(c.read_raw().await.starts_with(b"*14\r\n"));
    assert_eq!(c.read_raw().await, b"$-1\r\n");
}
