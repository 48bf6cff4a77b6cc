//! SLOWLOG, LATENCY HISTOGRAM and MEMORY USAGE on the bundled cluster: they report what
//! the node actually did (commands logged past the threshold, per-command call counts,
//! sizes growing with values), and COMMAND COUNT lists the families added with them.

mod support;

use redcluster::resp::Value;
use redcluster::server::TestCluster;
use support::raw::{parts, Client};

#[tokio::test]
async fn slowlog_latency_and_memory_report_real_activity() {
    let cluster = TestCluster::builder().primaries(1).start().await.unwrap();
    let mut c = Client::connect(cluster.seeds()[0]).await;
    assert_eq!(c.text(&["SLOWLOG", "LEN"]).await, "0");
    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"])
        .await;
    c.cmd(&["CLIENT", "SETNAME", "tester"]).await;
    let long = "x".repeat(200);
    c.cmd(&["SET", "k", &long]).await;
    let Value::Array(entries) = c.cmd(&["SLOWLOG", "GET", "1"]).await else {
        panic!("SLOWLOG GET is an array")
    };
    let Value::Array(e) = &entries[0] else {
        panic!("entry")
    };
    assert_eq!(e.len(), 6);
    let args = parts(&e[3]);
    assert_eq!(args[..2], ["SET", "k"]);
    assert_eq!(args[2], format!("{}... (72 more bytes)", "x".repeat(128)));
    assert_eq!(e[5], Value::bulk("tester"));
    // A negative threshold turns the log off.
    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"])
        .await;
    assert_eq!(c.text(&["SLOWLOG", "RESET"]).await, "OK");
    c.cmd(&["SET", "k", "v"]).await;
    assert_eq!(c.text(&["SLOWLOG", "LEN"]).await, "0");

    let hist = c.cmd(&["LATENCY", "HISTOGRAM", "set"]).await;
    let flat = format!("{hist:?}");
    assert!(
        flat.contains("calls") && flat.contains("histogram_usec"),
        "{flat}"
    );
    assert!(matches!(&hist, Value::Array(v) if v.len() == 2), "{hist:?}");

    c.cmd(&["SET", "small", "v"]).await;
    c.cmd(&["SET", "big", &"y".repeat(10_000)]).await;
    let (Value::Integer(small), Value::Integer(big)) = (
        c.cmd(&["MEMORY", "USAGE", "small"]).await,
        c.cmd(&["MEMORY", "USAGE", "big"]).await,
    ) else {
        panic!("MEMORY USAGE integers")
    };
    assert!(small > 0 && big > 10_000 && big < 13_000, "{small} {big}");
    assert_eq!(c.cmd(&["MEMORY", "USAGE", "none"]).await, Value::Null);
    let Value::Integer(n) = c.cmd(&["COMMAND", "COUNT"]).await else {
        panic!("COMMAND COUNT")
    };
    assert!(n >= 228, "COMMAND COUNT {n}");
}
