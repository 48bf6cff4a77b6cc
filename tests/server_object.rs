//! OBJECT over real TCP: its subcommands reach the keyspace and answer as Redis 7.0 does.

mod support;

use redcluster::resp::Value;
use redcluster::server::TestCluster;
use support::raw::Client;

#[tokio::test]
async fn object_subcommands_reach_the_keyspace() {
    let cluster = TestCluster::builder().primaries(3).start().await.unwrap();
    // "foo" hashes to slot 12182, on the third primary.
    let addr = cluster.nodes()[2].addr;
    let mut c = Client::connect(addr).await;
    c.cmd(&["SET", "foo", "12"]).await;
    assert_eq!(c.text(&["OBJECT", "ENCODING", "foo"]).await, "int");
    c.cmd(&["SET", "foo", "hello"]).await;
    assert_eq!(c.text(&["OBJECT", "ENCODING", "foo"]).await, "embstr");
    assert_eq!(
        c.cmd(&["OBJECT", "REFCOUNT", "foo"]).await,
        Value::Integer(1)
    );
    assert!(matches!(
        c.cmd(&["OBJECT", "IDLETIME", "foo"]).await,
        Value::Integer(_)
    ));
    assert!(c
        .text(&["OBJECT", "FREQ", "foo"])
        .await
        .starts_with("ERR An LFU maxmemory policy is not selected"));
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "{foo}missing"]).await,
        Value::Null
    );
    assert!(c
        .text(&["OBJECT", "ENCODING", "bar"])
        .await
        .starts_with("MOVED 5061 "));
    assert_eq!(
        c.text(&["OBJECT", "FOO", "foo"]).await,
        "ERR unknown subcommand 'FOO'. Try OBJECT HELP."
    );
    assert_eq!(
        c.text(&["OBJECT"]).await,
        "ERR wrong number of arguments for 'object' command"
    );
    assert!(matches!(
        c.cmd(&["OBJECT", "HELP"]).await,
        Value::Array(lines) if !lines.is_empty()
    ));
}
