//! ACL on the bundled server against a real redis-server 7.0 (one cluster-enabled node owning
//! every slot): the same ACL commands, logins and denied commands go to both, and the replies
//! must be identical on the wire. Two normalisations, both because Redis' own output depends
//! on its per-process hash seed: the single-command part of a rules string (after the
//! `+@all`/`-@all` and category rules, which are deterministic) is compared as a set, and so
//! is `ACL CAT <category>`; ACL LOG entries are compared without `age-seconds` and
//! `client-info`. Then the bundled cluster through the redcluster client: a restricted user
//! gets NOPERM, an allowed one succeeds.

mod support;

use std::net::SocketAddr;

use redcluster::resp::Value;
use redcluster::server::TestCluster;
use redcluster::Client as ClusterClient;
use support::raw::Client;
use support::real_cluster::RealNode;

#[path = "acl/script.rs"]
mod script;
use script::{ADMIN_SCRIPT, AS_USERS, RULES};

/// Sort the single-command rules (`+get`, `-hdel`, `+client|id`) of every rules string in
/// `v`, keeping everything else in place.
fn norm(v: Value) -> Value {
    match v {
        Value::BulkString(b) => {
            let text = String::from_utf8_lossy(&b).into_owned();
            if !text.contains("@all") {
                return Value::BulkString(b);
            }
            let mut words: Vec<&str> = text.split(' ').collect();
            let single =
                |w: &str| (w.starts_with('+') || w.starts_with('-')) && !w[1..].starts_with('@');
            let mut singles: Vec<&str> = words.iter().copied().filter(|w| single(w)).collect();
            singles.sort_by_key(|w| (&w[1..], w.starts_with('-')));
            let mut next = singles.into_iter();
            for w in words.iter_mut() {
                if single(w) {
                    *w = next.next().unwrap_or(*w);
                }
            }
            Value::bulk(words.join(" "))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(norm).collect()),
        Value::Map(kv) => Value::Map(kv.into_iter().map(|(k, v)| (k, norm(v))).collect()),
        other => other,
    }
}

/// ACL LOG entries without the fields that differ by nature (ages, client ids and ports).
fn log_fields(v: Value) -> Vec<Vec<(String, Value)>> {
    let Value::Array(entries) = v else {
        panic!("ACL LOG: {v:?}")
    };
    entries
        .into_iter()
        .map(|e| {
            let Value::Array(flat) = e else {
                panic!("entry: {e:?}")
            };
            flat.chunks(2)
                .map(|kv| (support::raw::text(&kv[0]), kv[1].clone()))
                .filter(|(k, _)| k != "age-seconds" && k != "client-info")
                .collect()
        })
        .collect()
}

struct Pair {
    real: Client,
    ours: Client,
}

impl Pair {
    async fn new(real: SocketAddr, ours: SocketAddr) -> Pair {
        Pair {
            real: Client::connect(real).await,
            ours: Client::connect(ours).await,
        }
    }

    /// Send `cmd` to both and require the same bytes back.
    async fn same(&mut self, cmd: &[&str]) {
        let want = self.real.cmd_raw(cmd).await;
        let got = self.ours.cmd_raw(cmd).await;
        assert!(
            want == got,
            "`{}`\n  redis-server: {:?}\n  bundled:      {:?}",
            cmd.join(" "),
            String::from_utf8_lossy(&want),
            String::from_utf8_lossy(&got)
        );
    }

    /// Both replies, decoded.
    async fn both(&mut self, cmd: &[&str]) -> (Value, Value) {
        (self.real.cmd(cmd).await, self.ours.cmd(cmd).await)
    }

    /// The same reply once single-command rules are sorted.
    async fn same_rules(&mut self, cmd: &[&str]) {
        let (want, got) = self.both(cmd).await;
        assert_eq!(norm(want), norm(got), "`{}`", cmd.join(" "));
    }

    /// The same elements, in any order.
    async fn same_set(&mut self, cmd: &[&str]) {
        let (want, got) = self.both(cmd).await;
        let sorted = |v: Value| {
            let mut items = support::raw::parts(&v);
            items.sort();
            items
        };
        let (want, got) = (sorted(want), sorted(got));
        assert!(!want.is_empty());
        assert_eq!(want, got, "`{}`", cmd.join(" "));
    }

    /// Both connections are closed by the server (`cmd` gets no reply).
    async fn closed_after(&mut self, cmd: &[&str]) {
        self.real.send(cmd).await;
        self.ours.send(cmd).await;
        assert_eq!(self.real.read().await, None, "redis-server kept it open");
        assert_eq!(self.ours.read().await, None, "bundled kept it open");
    }
}

#[tokio::test]
async fn acl_replies_match_redis_7_0() {
    let Some(real) = RealNode::start_single(&[]) else {
        return;
    };
    let cluster = TestCluster::builder().primaries(1).start().await.unwrap();
    let ours = cluster.seeds()[0];
    let mut admin = Pair::new(real.addr(), ours).await;
    for cmd in ADMIN_SCRIPT {
        admin.same(cmd).await;
    }
    for cmd in RULES {
        admin.same_rules(cmd).await;
    }
    // RESP3: GETUSER is a map with a set of flags.
    let mut resp3 = Pair::new(real.addr(), ours).await;
    let _ = resp3.both(&["HELLO", "3"]).await;
    for cmd in RULES {
        resp3.same_rules(cmd).await;
    }
    resp3.same(&["ACL", "GETUSER", "hank"]).await;
    resp3.same(&["ACL", "LOG", "0"]).await;
    for cat in ["hash", "dangerous", "pubsub", "connection", "KEYSPACE"] {
        admin.same_set(&["ACL", "CAT", cat]).await;
    }
    let (want, got) = admin.both(&["ACL", "GENPASS", "5"]).await;
    assert_eq!(support::raw::text(&want).len(), 2);
    assert_eq!(support::raw::text(&got).len(), 2);
    // Failed logins.
    let mut anon = Pair::new(real.addr(), ours).await;
    for cmd in [
        &["AUTH", "alice", "wrong"][..],
        &["AUTH", "nosuch", "x"],
        &["AUTH", "onlyone"],
        &["auth", "a", "b", "c"],
        &["HELLO", "2", "AUTH", "alice", "wrong"],
        &["ACL", "WHOAMI"],
    ] {
        anon.same(cmd).await;
    }
    for (user, pass, cmds) in AS_USERS {
        let mut p = Pair::new(real.addr(), ours).await;
        p.same(&["AUTH", user, pass]).await;
        for cmd in *cmds {
            p.same(cmd).await;
        }
    }
    // SLOWLOG shows no password (the arguments of each entry).
    admin
        .same(&["CONFIG", "SET", "slowlog-log-slower-than", "0"])
        .await;
    admin.same(&["SLOWLOG", "RESET"]).await;
    let mut login = Pair::new(real.addr(), ours).await;
    login.same(&["AUTH", "carol", "c2"]).await;
    let _ = login.both(&["HELLO", "2", "AUTH", "carol", "c2"]).await; // (client ids differ)
    login.same(&["AUTH", "secret-pw"]).await;
    admin
        .same(&["ACL", "SETUSER", "lara", "on", ">secret-pw", "~*"])
        .await;
    let slow_args = |v: Value| -> Vec<Vec<String>> {
        let Value::Array(entries) = v else {
            panic!("SLOWLOG GET: {v:?}")
        };
        entries
            .iter()
            .map(|e| match e {
                Value::Array(fields) => support::raw::parts(&fields[3]),
                other => panic!("entry: {other:?}"),
            })
            .collect()
    };
    let (want, got) = admin.both(&["SLOWLOG", "GET", "10"]).await;
    let (want, got) = (slow_args(want), slow_args(got));
    assert!(
        want.len() >= 4 && !format!("{got:?}").contains("secret-pw"),
        "{got:?}"
    );
    assert_eq!(want, got);
    admin
        .same(&["CONFIG", "SET", "slowlog-log-slower-than", "10000"])
        .await;
    // Narrowing a user's channels closes its subscribers outside them (a superset keeps
    // them).
    let mut sub = Pair::new(real.addr(), ours).await;
    sub.same(&["AUTH", "dave", "x"]).await;
    sub.same(&["SUBSCRIBE", "news.1"]).await;
    admin.same(&["ACL", "SETUSER", "dave", "&more"]).await;
    sub.same(&["PING"]).await;
    admin
        .same(&["ACL", "SETUSER", "dave", "resetchannels", "&other"])
        .await;
    sub.closed_after(&["PING"]).await;
    // EXEC checks again what MULTI queued.
    let mut alice = Pair::new(real.addr(), ours).await;
    alice.same(&["AUTH", "alice", "p1"]).await;
    admin
        .same(&["ACL", "SETUSER", "alice", "+multi", "+exec"])
        .await;
    alice.same(&["MULTI"]).await;
    alice.same(&["GET", "cached:2"]).await;
    admin.same(&["ACL", "SETUSER", "alice", "-get"]).await;
    alice.same(&["EXEC"]).await;
    // The log, newest first.
    let (want, got) = admin.both(&["ACL", "LOG"]).await;
    let (want, got) = (log_fields(want), log_fields(got));
    assert!(want.len() >= 10, "{want:?}");
    assert_eq!(want, got);
    let (want, got) = admin.both(&["ACL", "LOG", "2"]).await;
    assert_eq!(log_fields(want), log_fields(got));
    // A disabled user keeps its connections but cannot log in again; a deleted one's
    // connections are closed.
    admin
        .same(&["ACL", "SETUSER", "alice", "off", "+get"])
        .await;
    alice.same(&["GET", "cached:3"]).await;
    let mut again = Pair::new(real.addr(), ours).await;
    again.same(&["AUTH", "alice", "p1"]).await;
    admin.same(&["ACL", "DELUSER", "alice"]).await;
    alice.closed_after(&["PING"]).await;
    // A user deleting itself gets the reply, then the connection closes.
    let mut bob = Pair::new(real.addr(), ours).await;
    bob.same(&["AUTH", "bob", "x"]).await;
    bob.same(&["ACL", "DELUSER", "bob"]).await; // ACL DELUSER is @dangerous: refused
    admin.same(&["ACL", "SETUSER", "bob", "+acl|deluser"]).await;
    bob.same(&["ACL", "DELUSER", "bob"]).await;
    bob.closed_after(&["PING"]).await;
    // `default` with a password: new connections must log in; this one stays logged in.
    admin
        .same(&["ACL", "SETUSER", "default", "resetpass", ">pw"])
        .await;
    admin.same(&["ACL", "WHOAMI"]).await;
    admin.same_rules(&["ACL", "GETUSER", "default"]).await;
    let mut fresh = Pair::new(real.addr(), ours).await;
    for cmd in [
        &["GET", "a"][..],
        &["HELLO", "3"],
        &["AUTH", "wrong"],
        &["AUTH", "pw"],
        &["GET", "a"],
        &["ACL", "WHOAMI"],
    ] {
        fresh.same(cmd).await;
    }
    let mut hello = Pair::new(real.addr(), ours).await;
    hello
        .same(&["HELLO", "2", "AUTH", "default", "wrong"])
        .await;
    let (want, got) = hello.both(&["HELLO", "2", "AUTH", "default", "pw"]).await;
    assert!(matches!(want, Value::Array(_)) && matches!(got, Value::Array(_)));
    hello.same(&["ACL", "WHOAMI"]).await;
    drop(real);
}

#[tokio::test]
async fn a_restricted_user_gets_noperm_through_the_client() {
    let cluster = TestCluster::builder()
        .primaries(3)
        .acl_user("reader", "on >r-pw ~* &* +@all -@write")
        .acl_user("writer", "on >w-pw ~app:* &* +@all")
        .start()
        .await
        .unwrap();
    let reader = ClusterClient::builder(cluster.seeds())
        .credentials(Some("reader"), "r-pw")
        .build()
        .await
        .unwrap();
    let writer = ClusterClient::builder(cluster.seeds())
        .credentials(Some("writer"), "w-pw")
        .build()
        .await
        .unwrap();
    for i in 0..20 {
        writer.set(format!("app:{i}"), i).await.unwrap();
        assert_eq!(reader.get::<i64>(format!("app:{i}")).await.unwrap(), i);
    }
    let e = reader.set("app:1", 5).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("NOPERM this user has no permissions to run the 'set' command"),
        "{e}"
    );
    assert!(!e.is_retryable(), "{e:?}");
    let e = writer.set("other:1", 5).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("NOPERM this user has no permissions to access one of the keys"),
        "{e}"
    );
    // Rotate the writer's password on every node: live connections keep working, a new
    // client needs the new password.
    cluster.acl_setuser_all("writer", ">w-pw2 <w-pw").unwrap();
    writer.set("app:rotated", 1).await.unwrap();
    assert!(ClusterClient::builder(cluster.seeds())
        .credentials(Some("writer"), "w-pw")
        .build()
        .await
        .is_err());
    let renewed = ClusterClient::builder(cluster.seeds())
        .credentials(Some("writer"), "w-pw2")
        .build()
        .await
        .unwrap();
    assert_eq!(renewed.get::<i64>("app:rotated").await.unwrap(), 1);
    assert!(cluster
        .acl_setuser_all("writer", "<not-a-password")
        .is_err());
    let shown = format!(
        "{:?}",
        TestCluster::builder()
            .requirepass("pw-one")
            .user("u", "pw-two")
            .acl_user(
                "v",
                "on >pw-three #f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a"
            )
    );
    assert!(
        shown.contains("<redacted>") && !shown.contains("pw-"),
        "{shown}"
    );
    assert!(!shown.contains("f64551fc"), "{shown}");
    assert!(TestCluster::builder()
        .acl_user("bad", "+nosuchcommand")
        .start()
        .await
        .is_err());
}

#[tokio::test]
async fn the_binary_creates_users_from_user_directives() {
    let server = support::server_bin::ServerProcess::start(
        3,
        &["--primaries", "3", "--user", "app on >app-pw ~app:* +@all"],
    );
    let seeds: Vec<SocketAddr> = (0..3).map(|i| server.addr(i).parse().unwrap()).collect();
    let client = ClusterClient::builder(seeds.clone())
        .credentials(Some("app"), "app-pw")
        .build()
        .await
        .unwrap();
    client.set("app:1", 7).await.unwrap();
    assert_eq!(client.get::<i64>("app:1").await.unwrap(), 7);
    let e = client.set("other", 1).await.unwrap_err();
    assert!(e.to_string().contains("NOPERM"), "{e}");
    let mut raw = Client::connect(seeds[1]).await;
    let users = support::raw::parts(&raw.cmd(&["ACL", "USERS"]).await);
    assert_eq!(users, ["app", "default"]);
}
