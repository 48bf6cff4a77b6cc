//! MIGRATE itself over real TCP against the bundled cluster: keys with their TTL, the KEYS
//! form, COPY/REPLACE/BUSYKEY, argument errors, AUTH/AUTH2, dead targets — with the replies
//! Redis 7.0 gives (checked against redis-server 7.0.15). The slot's ASK/TRYAGAIN/MOVED
//! state machine is in `server_slot_migration.rs`.

mod support;

use redcluster::resp::Value;
use redcluster::server::TestCluster;
use support::migrate::*;

#[tokio::test]
async fn migrate_moves_one_key_with_its_ttl() {
    let f = three().await;
    let (mut src, mut dst) = (f.client(2).await, f.client(0).await);
    assert_eq!(src.text(&["SET", "{a}1", "v1", "PX", "100000"]).await, "OK");
    f.open(&mut src, &mut dst).await;
    let port = f.port(0);
    let reply = src
        .text(&["MIGRATE", "127.0.0.1", &port, "{a}1", "0", "5000"])
        .await;
    assert_eq!(reply, "OK");
    // Gone from the source: the source now sends its clients to the target.
    assert_eq!(src.text(&["GET", "{a}1"]).await, ask_to(&f, 0));
    assert_eq!(dst.text(&["ASKING"]).await, "OK");
    assert_eq!(dst.text(&["GET", "{a}1"]).await, "v1");
    assert_eq!(dst.text(&["ASKING"]).await, "OK");
    let Value::Integer(pttl) = dst.cmd(&["PTTL", "{a}1"]).await else {
        panic!("PTTL is an integer");
    };
    assert!(
        pttl > 0 && pttl <= 100_000,
        "TTL travels with the key: {pttl}"
    );
    // Nothing to move any more.
    let reply = src
        .text(&["MIGRATE", "127.0.0.1", &port, "{a}1", "0", "5000"])
        .await;
    assert_eq!(reply, "NOKEY");
}

#[tokio::test]
async fn migrate_keys_form_copy_replace_and_busykey() {
    let f = three().await;
    let (mut src, mut dst) = (f.client(2).await, f.client(0).await);
    let port = f.port(0);
    assert_eq!(
        src.text(&["MSET", "{a}1", "1", "{a}2", "2", "{a}3", "3"])
            .await,
        "OK"
    );
    f.open(&mut src, &mut dst).await;
    // COPY leaves the source keys; missing keys are skipped.
    let copy = [
        "MIGRATE",
        "127.0.0.1",
        &port,
        "",
        "0",
        "5000",
        "COPY",
        "KEYS",
        "{a}1",
        "{a}2",
        "{a}none",
    ];
    assert_eq!(src.text(&copy).await, "OK");
    assert_eq!(src.text(&["EXISTS", "{a}1", "{a}2"]).await, "2");
    assert_eq!(dst.text(&["CLUSTER", "COUNTKEYSINSLOT", SLOT]).await, "2");
    // Again without COPY: the target has them, so BUSYKEY, and the keys stay here.
    assert_eq!(src.text(&["SET", "{a}1", "changed"]).await, "OK");
    let plain = [
        "MIGRATE",
        "127.0.0.1",
        &port,
        "",
        "0",
        "5000",
        "KEYS",
        "{a}1",
        "{a}2",
    ];
    assert_eq!(
        src.text(&plain).await,
        "ERR Target instance replied with error: BUSYKEY Target key name already exists."
    );
    assert_eq!(src.text(&["EXISTS", "{a}1", "{a}2"]).await, "2");
    // REPLACE overwrites the target's copies and deletes ours.
    let replace = [
        "MIGRATE",
        "127.0.0.1",
        &port,
        "",
        "0",
        "5000",
        "REPLACE",
        "KEYS",
        "{a}1",
        "{a}2",
        "{a}3",
    ];
    assert_eq!(src.text(&replace).await, "OK");
    assert_eq!(src.text(&["CLUSTER", "COUNTKEYSINSLOT", SLOT]).await, "0");
    assert_eq!(dst.text(&["CLUSTER", "COUNTKEYSINSLOT", SLOT]).await, "3");
    assert_eq!(dst.text(&["ASKING"]).await, "OK");
    assert_eq!(dst.text(&["GET", "{a}1"]).await, "changed");
    // All keys missing: NOKEY.
    let none = [
        "MIGRATE",
        "127.0.0.1",
        &port,
        "",
        "0",
        "5000",
        "KEYS",
        "{a}x",
        "{a}y",
    ];
    assert_eq!(src.text(&none).await, "NOKEY");
}

#[tokio::test]
async fn migrate_argument_errors_match_redis() {
    let f = three().await;
    let mut src = f.client(2).await;
    let port = f.port(0);
    assert_eq!(src.text(&["SET", "{a}1", "v"]).await, "OK");
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "MIGRATE",
                "127.0.0.1",
                &port,
                "{a}1",
                "0",
                "500",
                "KEYS",
                "{a}2",
            ],
            "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
        ),
        (
            &["MIGRATE", "127.0.0.1", &port, "{a}1", "0", "500", "BOGUS"],
            "ERR syntax error",
        ),
        (
            &["MIGRATE", "127.0.0.1", &port, "{a}1", "0", "500", "AUTH"],
            "ERR syntax error",
        ),
        (
            &[
                "MIGRATE",
                "127.0.0.1",
                &port,
                "{a}1",
                "0",
                "500",
                "AUTH2",
                "u",
            ],
            "ERR syntax error",
        ),
        (
            &["MIGRATE", "127.0.0.1", &port, "{a}1", "0", "abc"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["MIGRATE", "127.0.0.1", &port, "{a}1", "x", "500"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["MIGRATE", "127.0.0.1", &port, "{a}1", "1", "500"],
            "ERR Target instance replied with error: ERR SELECT is not allowed in cluster mode",
        ),
        (
            &["MIGRATE", "127.0.0.1", &port, "{a}1", "0"],
            "ERR wrong number of arguments for 'migrate' command",
        ),
        // The target does not serve the slot and nobody opened it: its MOVED comes back.
        (
            &["MIGRATE", "127.0.0.1", &port, "{a}1", "0", "500"],
            &format!(
                "ERR Target instance replied with error: MOVED {SLOT} {}",
                f.addrs[2]
            ),
        ),
    ];
    for (args, want) in cases {
        assert_eq!(&src.text(args).await, want, "{args:?}");
    }
    assert_eq!(
        src.text(&["GET", "{a}1"]).await,
        "v",
        "failed MIGRATEs keep the key"
    );
}

#[tokio::test]
async fn migrate_authenticates_with_auth_and_auth2() {
    let f = fixture(TestCluster::builder().primaries(3).requirepass("s3cret")).await;
    let (mut src, mut dst) = (f.client(2).await, f.client(0).await);
    assert_eq!(src.text(&["AUTH", "s3cret"]).await, "OK");
    assert_eq!(dst.text(&["AUTH", "s3cret"]).await, "OK");
    assert_eq!(src.text(&["MSET", "{a}1", "1", "{a}2", "2"]).await, "OK");
    f.open(&mut src, &mut dst).await;
    let port = f.port(0);
    let no_auth = ["MIGRATE", "127.0.0.1", &port, "{a}1", "0", "5000"];
    assert_eq!(
        src.text(&no_auth).await,
        "ERR Target instance replied with error: NOAUTH Authentication required."
    );
    let wrong = [
        "MIGRATE",
        "127.0.0.1",
        &port,
        "{a}1",
        "0",
        "5000",
        "AUTH",
        "nope",
    ];
    assert!(src
        .text(&wrong)
        .await
        .starts_with("ERR Target instance replied with error: WRONGPASS"));
    assert_eq!(src.text(&["EXISTS", "{a}1"]).await, "1");
    let auth = [
        "MIGRATE",
        "127.0.0.1",
        &port,
        "{a}1",
        "0",
        "5000",
        "AUTH",
        "s3cret",
    ];
    assert_eq!(src.text(&auth).await, "OK");
    let auth2 = [
        "MIGRATE",
        "127.0.0.1",
        &port,
        "",
        "0",
        "5000",
        "AUTH2",
        "default",
        "s3cret",
        "KEYS",
        "{a}2",
    ];
    assert_eq!(src.text(&auth2).await, "OK");
    assert_eq!(dst.text(&["CLUSTER", "COUNTKEYSINSLOT", SLOT]).await, "2");
    assert_eq!(src.text(&["CLUSTER", "COUNTKEYSINSLOT", SLOT]).await, "0");
}

#[tokio::test]
async fn migrate_to_a_dead_or_silent_target_is_an_ioerr_and_keeps_the_key() {
    let f = three().await;
    let mut src = f.client(2).await;
    assert_eq!(src.text(&["SET", "{a}1", "v"]).await, "OK");
    // Nobody listens: refused at once.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port().to_string();
    drop(dead);
    let reply = src
        .text(&["MIGRATE", "127.0.0.1", &dead_port, "{a}1", "0", "1000"])
        .await;
    assert_eq!(reply, "IOERR error or timeout writing to target instance");
    // Accepts but never answers: the reply is awaited for `timeout` ms only.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port().to_string();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let reply = src
        .text(&["MIGRATE", "127.0.0.1", &silent_port, "{a}1", "0", "200"])
        .await;
    assert_eq!(reply, "IOERR error or timeout reading to target instance");
    assert_eq!(src.text(&["GET", "{a}1"]).await, "v");
    // The connection still serves other commands.
    assert_eq!(src.text(&["PING"]).await, "PONG");
    hold.abort();
}
