//! COMMAND DOCS on the bundled cluster against a real redis-server 7.0: for every command
//! the bundled node lists, the same bytes in RESP2 and RESP3. Containers (CONFIG, CLIENT,
//! ...) list their subcommands in hash-table order, which changes with every redis-server
//! start, so for them each `parent|sub` entry is compared byte for byte and the container's
//! own entry is compared with subcommands sorted, over the subcommands the bundled node
//! implements.

mod support;

use redcluster::resp::Value;
use redcluster::server::TestCluster;
use support::raw::{text, Client};
use support::real_cluster::RealCluster;

/// The pairs of a map reply (RESP3) or of a flat array (RESP2).
fn pairs(v: &Value) -> Vec<(Value, Value)> {
    match v {
        Value::Map(p) => p.clone(),
        Value::Array(items) => items
            .chunks(2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect(),
        other => panic!("not a map: {other:?}"),
    }
}

/// A docs entry with its `subcommands` sorted by name and limited to `keep` (when given).
fn normalized(docs: &Value, keep: Option<&[String]>) -> Vec<(Value, Value)> {
    pairs(docs)
        .into_iter()
        .map(|(k, v)| {
            if text(&k) != "subcommands" {
                return (k, v);
            }
            let mut subs: Vec<(Value, Value)> = pairs(&v)
                .into_iter()
                .filter(|(name, _)| keep.map_or(true, |keep| keep.contains(&text(name))))
                .collect();
            subs.sort_by_key(|(name, _)| text(name));
            (
                k,
                Value::Array(subs.into_iter().flat_map(|(a, b)| [a, b]).collect()),
            )
        })
        .collect()
}

fn sub_names(docs: &Value) -> Vec<String> {
    pairs(docs)
        .into_iter()
        .find(|(k, _)| text(k) == "subcommands")
        .map(|(_, v)| pairs(&v).iter().map(|(n, _)| text(n)).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn command_docs_match_redis_server_for_every_implemented_command() {
    let Some(real) = RealCluster::single() else {
        return;
    };
    let ours = TestCluster::builder().primaries(1).start().await.unwrap();
    let mut r = Client::connect(real.nodes[0].addr()).await;
    let mut o = Client::connect(ours.seeds()[0]).await;
    let Value::Array(list) = o.cmd(&["COMMAND", "LIST"]).await else {
        panic!("COMMAND LIST")
    };
    let names: Vec<String> = list.iter().map(text).collect();
    assert!(names.len() > 200, "{} commands", names.len());
    let (mut exact, mut containers, mut partial) = (0, 0, Vec::new());
    for resp3 in [false, true] {
        if resp3 {
            r.cmd(&["HELLO", "3"]).await;
            o.cmd(&["HELLO", "3"]).await;
        }
        for name in &names {
            let want = r.cmd_raw(&["COMMAND", "DOCS", name]).await;
            let got = o.cmd_raw(&["COMMAND", "DOCS", name]).await;
            if want == got {
                exact += 1;
                continue;
            }
            // Only a container may differ on the wire, and only by subcommand order or by
            // subcommands the bundled node does not implement.
            let want_v = r.cmd(&["COMMAND", "DOCS", name]).await;
            let got_v = o.cmd(&["COMMAND", "DOCS", name]).await;
            let (want_docs, got_docs) = (&pairs(&want_v)[0].1, &pairs(&got_v)[0].1);
            let subs = sub_names(got_docs);
            assert!(
                !subs.is_empty(),
                "COMMAND DOCS {name} (resp3={resp3})\n  redis-server: {}\n  bundled:      {}",
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&got)
            );
            assert_eq!(
                normalized(want_docs, Some(&subs)),
                normalized(got_docs, None),
                "COMMAND DOCS {name} (resp3={resp3})"
            );
            containers += 1;
            let missing: Vec<String> = sub_names(want_docs)
                .into_iter()
                .filter(|s| !subs.contains(s))
                .collect();
            if !missing.is_empty() && !resp3 {
                partial.push(format!("{name}: {}", missing.join(" ")));
            }
            for sub in &subs {
                let want = r.cmd_raw(&["COMMAND", "DOCS", sub]).await;
                let got = o.cmd_raw(&["COMMAND", "DOCS", sub]).await;
                assert!(
                    want == got,
                    "COMMAND DOCS {sub} (resp3={resp3})\n  redis-server: {}\n  bundled:      {}",
                    String::from_utf8_lossy(&want),
                    String::from_utf8_lossy(&got)
                );
                exact += 1;
            }
        }
        // Several names at once, unknown ones skipped, subcommand names accepted.
        let many = ["COMMAND", "DOCS", "get", "nosuch", "config|get", "SET"];
        assert_eq!(r.cmd_raw(&many).await, o.cmd_raw(&many).await);
    }
    eprintln!(
        "COMMAND DOCS: {exact} entries byte for byte, {containers} containers compared \
         with sorted subcommands; subcommands not implemented: {}",
        partial.join("; ")
    );
}

/// The subcommands of redis-server 7.0.15 the bundled server does not run (the Lua
/// debugger): not listed, as COMMAND LIST lists what runs.
const NOT_IMPLEMENTED: &[&str] = &["script|debug"];

/// COMMAND COUNT and COMMAND LIST (with subcommands, and each FILTERBY) equal redis-server's
/// (as sets: Redis lists them in hash-table order).
#[tokio::test]
async fn command_count_and_list_match_redis_server() {
    let Some(real) = RealCluster::single() else {
        return;
    };
    let ours = TestCluster::builder().primaries(1).start().await.unwrap();
    let mut r = Client::connect(real.nodes[0].addr()).await;
    let mut o = Client::connect(ours.seeds()[0]).await;
    assert_eq!(
        r.cmd_raw(&["COMMAND", "COUNT"]).await,
        o.cmd_raw(&["COMMAND", "COUNT"]).await
    );
    let sorted = |v: Value| {
        let Value::Array(items) = v else {
            return vec![format!("{v:?}")];
        };
        let mut names: Vec<String> = items.iter().map(text).collect();
        names.sort();
        names
    };
    for cmd in [
        &["COMMAND", "LIST"][..],
        &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "hyperloglog"],
        &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "Scripting"],
        &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "nosuch"],
        &["COMMAND", "LIST", "FILTERBY", "PATTERN", "x*"],
        &["COMMAND", "LIST", "FILTERBY", "PATTERN", "CONFIG|*"],
        &["COMMAND", "LIST", "FILTERBY", "MODULE", "m"],
        &["COMMAND", "LIST", "FILTERBY", "PATTERN"],
        &["COMMAND", "LIST", "FILTERBY", "BOGUS", "x"],
        &["COMMAND", "LIST", "X"],
    ] {
        let want: Vec<String> = sorted(r.cmd(cmd).await)
            .into_iter()
            .filter(|n| !NOT_IMPLEMENTED.contains(&n.as_str()))
            .collect();
        assert_eq!(want, sorted(o.cmd(cmd).await), "{cmd:?}");
    }
}
