//! The keys `command::classify` finds (the ones the client routes by and the bundled server's
//! cluster routing checks) against a real redis-server 7.0: `COMMAND GETKEYS` on the bundled
//! server answers from the same key positions, so the same request sent to both must give
//! the same reply, for the commands whose keys are easy to get wrong (numkeys, keywords,
//! SORT's STORE, MIGRATE's KEYS, subcommands, shard channels) and for the errors.

mod support;

use redcluster::resp::Value;
use redcluster::server::TestCluster;
use support::raw::Client;
use support::real_cluster::RealCluster;

const CASES: &[&str] = &[
    "GET k",
    "SET k v GET",
    "MSET a 1 b 2",
    "MGET a b c",
    "DEL a b",
    "EVAL s 2 k1 k2 arg",
    "EVAL s 0 arg",
    "EVALSHA 0123456789012345678901234567890123456789 1 k",
    "FCALL f 1 k x",
    "FCALL_RO f 0",
    "ZUNIONSTORE d 2 a b WEIGHTS 1 2",
    "ZINTER 2 a b",
    "ZDIFFSTORE d 1 a",
    "BLMPOP 0 2 a b LEFT",
    "LMPOP 2 a b LEFT COUNT 2",
    "BZMPOP 1 1 z MIN",
    "BLPOP l1 l2 0",
    "BLMOVE s d LEFT RIGHT 0",
    "BRPOPLPUSH s d 1",
    "XREAD COUNT 2 STREAMS s1 s2 0 0",
    "XREAD BLOCK 5 STREAMS s 0",
    "XREADGROUP GROUP g c COUNT 1 BLOCK 5 STREAMS s1 s2 > >",
    "GEORADIUS a 0 0 1 m STORE b",
    "GEORADIUS a 0 0 1 m STOREDIST b",
    "GEOSEARCHSTORE d s FROMLONLAT 0 0 BYRADIUS 1 m",
    "SORT a",
    "SORT a STORE b",
    "SORT a BY x LIMIT 0 1 STORE b",
    "SORT a GET store STORE b",
    "SORT a STORE b STORE c",
    "SORT_RO a BY x",
    "MIGRATE h 1 k 0 5",
    "MIGRATE h 1 k 0 5 COPY REPLACE",
    "MIGRATE h 1 \"\" 0 5 KEYS a b",
    "MIGRATE h 1 \"\" 0 5 AUTH keys KEYS a",
    "MIGRATE h 1 \"\" 0 5 AUTH2 u keys KEYS a",
    "MIGRATE h 1 k 0 5 KEYS a b",
    "OBJECT ENCODING k",
    "XINFO STREAM s",
    "MEMORY USAGE k",
    "BITFIELD k GET u8 0",
    "LMOVE a b LEFT RIGHT",
    "RENAME a b",
    "SMOVE a b m",
    "COPY a b",
    "SPUBLISH ch m",
    "SSUBSCRIBE a b",
    "PUBLISH ch m",
    "PING",
    "GET",
    "NOSUCHCOMMAND k",
];

/// A command as words; `""` is the empty argument.
fn words(line: &str) -> Vec<&str> {
    line.split(' ')
        .map(|w| if w == "\"\"" { "" } else { w })
        .collect()
}

#[tokio::test]
async fn command_getkeys_matches_redis_server() {
    let Some(real) = RealCluster::single() else {
        return;
    };
    let ours = TestCluster::builder().primaries(1).start().await.unwrap();
    let mut real_c = Client::connect(real.nodes[0].addr()).await;
    let mut ours_c = Client::connect(ours.seeds()[0]).await;
    let mut with_keys = 0;
    for case in CASES {
        let args = [&["COMMAND", "GETKEYS"][..], &words(case)].concat();
        let want = real_c.cmd(&args).await;
        let got = ours_c.cmd(&args).await;
        assert_eq!(got, want, "COMMAND GETKEYS {case}");
        if matches!(&want, Value::Array(keys) if !keys.is_empty()) {
            with_keys += 1;
        }
    }
    // Most cases find keys; the rest are the errors Redis gives.
    assert!(with_keys >= 35, "only {with_keys} cases found keys");
}
