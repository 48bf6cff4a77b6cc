//! The bundled cluster serving TLS (feature `tls`), checked with `redis-cli --tls`: the
//! reference tool must connect, follow redirects and check the cluster, and replicas must
//! sync over TLS links.
#![cfg(feature = "tls")]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use redcluster::server::{Role, ServerTls, TestCluster, TlsAuthClients};

mod support;

/// Write `text` to a fresh file in a per-test temporary directory.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "redcluster-tls-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// 3 primaries with a replica each, serving TLS only.
async fn tls_cluster(tls: ServerTls) -> TestCluster {
    TestCluster::builder()
        .primaries(3)
        .replicas_per_primary(1)
        .tls(tls)
        .start()
        .await
        .unwrap()
}

fn redis_cli_available() -> bool {
    let ok = Command::new("redis-cli").arg("--version").output().is_ok();
    if !ok && std::env::var("REDCLUSTER_REQUIRE_REAL").as_deref() == Ok("1") {
        panic!("REDCLUSTER_REQUIRE_REAL=1 but redis-cli is not installed");
    }
    ok
}

/// Run redis-cli over TLS against `port`; stdout and stderr together.
async fn cli_tls(ca: &PathBuf, extra: &[String], port: u16, args: &[&str]) -> String {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["--tls", "--cacert"])
        .arg(ca)
        .args(extra)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

#[tokio::test]
async fn redis_cli_speaks_tls_to_the_bundled_cluster_and_replicas_sync_over_tls() {
    if !redis_cli_available() {
        return;
    }
    let tls = ServerTls::generate().unwrap();
    let ca = temp_file("ca.pem", tls.ca_pem());
    let cluster = tls_cluster(tls).await;
    let nodes = cluster.nodes();
    let port = nodes[0].addr.port();

    // -c follows MOVED over TLS: keys of every node written and read back through node 0.
    for i in 0..12 {
        let key = format!("tls:{i}");
        let out = cli_tls(&ca, &[], port, &["-c", "SET", &key, &format!("v{i}")]).await;
        assert_eq!(out.trim(), "OK", "{out}");
        let out = cli_tls(&ca, &[], port, &["-c", "GET", &key]).await;
        assert_eq!(out.trim(), format!("v{i}"), "{out}");
    }

    // --cluster check over TLS: every slot covered, every node agrees.
    let out = cli_tls(
        &ca,
        &[],
        port,
        &["--cluster", "check", &format!("127.0.0.1:{port}")],
    )
    .await;
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    assert!(
        out.contains("[OK] All nodes agree about slots configuration."),
        "{out}"
    );

    // Replicas synced over TLS links and keep receiving writes.
    for n in nodes.iter().filter(|n| n.role == Role::Replica) {
        let out = cli_tls(&ca, &[], n.addr.port(), &["INFO", "replication"]).await;
        assert!(out.contains("master_link_status:up"), "{out}");
    }
    let replica = nodes.iter().find(|n| n.role == Role::Replica).unwrap();
    let primary = nodes
        .iter()
        .find(|n| Some(&n.id) == replica.primary_id.as_ref())
        .unwrap();
    // A key owned by that primary.
    let key = (0..10_000)
        .map(|i| format!("r{i}"))
        .find(|k| {
            primary
                .slots
                .iter()
                .any(|r| r.contains(&redcluster::slot::key_slot(k.as_bytes())))
        })
        .unwrap();
    let out = cli_tls(&ca, &[], primary.addr.port(), &["SET", &key, "replicated"]).await;
    assert_eq!(out.trim(), "OK", "{out}");
    let want = cli_tls(&ca, &[], primary.addr.port(), &["DBSIZE"]).await;
    assert_ne!(want.trim(), "0");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = cli_tls(&ca, &[], replica.addr.port(), &["DBSIZE"]).await;
        if got == want {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replica never got the write"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A plaintext client on the TLS port is dropped, not served (and does not hang).
    let mut plain = Command::new("redis-cli");
    plain.args(["-h", "127.0.0.1", "-p", &port.to_string(), "PING"]);
    let out = tokio::time::timeout(
        Duration::from_secs(15),
        tokio::task::spawn_blocking(move || plain.output()),
    )
    .await
    .expect("plaintext redis-cli hung on a TLS port")
    .unwrap()
    .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("PONG"));

    // A client that does not trust the CA is refused.
    let other = ServerTls::generate().unwrap();
    let wrong_ca = temp_file("wrong-ca.pem", other.ca_pem());
    let out = cli_tls(&wrong_ca, &[], port, &["PING"]).await;
    assert!(!out.contains("PONG"), "{out}");
    assert!(out.to_lowercase().contains("certificate"), "{out}");
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_signed_by_the_ca() {
    if !redis_cli_available() {
        return;
    }
    let tls = ServerTls::generate()
        .unwrap()
        .auth_clients(TlsAuthClients::Yes);
    let ca = temp_file("ca.pem", tls.ca_pem());
    let (cert, key) = tls.client_cert("app").unwrap().unwrap();
    let cert = temp_file("client.pem", &cert);
    let key = temp_file("client.key", &key);
    let cluster = tls_cluster(tls).await;
    let port = cluster.nodes()[0].addr.port();
    let with_cert = [
        "--cert".to_string(),
        cert.display().to_string(),
        "--key".to_string(),
        key.display().to_string(),
    ];
    let out = cli_tls(&ca, &with_cert, port, &["PING"]).await;
    assert_eq!(out.trim(), "PONG", "{out}");
    let out = cli_tls(&ca, &[], port, &["PING"]).await;
    assert!(!out.contains("PONG"), "{out}");
    // Replicas present the node certificate on their links, so they sync under mutual TLS.
    for n in cluster.nodes().iter().filter(|n| n.role == Role::Replica) {
        let out = cli_tls(&ca, &with_cert, n.addr.port(), &["INFO", "replication"]).await;
        assert!(out.contains("master_link_status:up"), "{out}");
    }
}

/// A child process killed on drop.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_serves_tls_with_redis_servers_flags() {
    if !redis_cli_available() {
        return;
    }
    let tls = ServerTls::generate().unwrap();
    let (client_cert, client_key) = tls.client_cert("cli").unwrap().unwrap();
    let ca = temp_file("ca.pem", tls.ca_pem());
    let cert = temp_file("node.crt", tls.cert_pem());
    let key = temp_file("node.key", tls.key_pem());
    let ccert = temp_file("client.crt", &client_cert);
    let ckey = temp_file("client.key", &client_key);
    let base = support::server_bin::free_port_run(6);
    let _server = Killed(
        Command::new(env!("CARGO_BIN_EXE_redcluster-server"))
            .args(["--primaries", "3", "--replicas-per-primary", "1"])
            .args(["--tls-port", &base.to_string(), "--port", "0"])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&ca)
            .args(["--tls-replication", "yes", "--tls-cluster", "yes"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let with_cert = [
        "--cert".to_string(),
        ccert.display().to_string(),
        "--key".to_string(),
        ckey.display().to_string(),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for port in base..base + 6 {
        while cli_tls(&ca, &with_cert, port, &["PING"]).await.trim() != "PONG" {
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {port} never answered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // tls-auth-clients defaults to yes, as in Redis: no client certificate, no service.
    let out = cli_tls(&ca, &[], base, &["PING"]).await;
    assert!(!out.contains("PONG"), "{out}");
    for i in 0..6 {
        let k = format!("bin:{i}");
        let out = cli_tls(&ca, &with_cert, base, &["-c", "SET", &k, "x"]).await;
        assert_eq!(out.trim(), "OK", "{out}");
    }
    let out = cli_tls(
        &ca,
        &with_cert,
        base,
        &["--cluster", "check", &format!("127.0.0.1:{base}")],
    )
    .await;
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    for port in base + 3..base + 6 {
        let out = cli_tls(&ca, &with_cert, port, &["INFO", "replication"]).await;
        assert!(out.contains("master_link_status:up"), "{out}");
    }
}

/// `--tls-port BASE --port BASE2`: TLS on BASE.., plaintext on BASE2.., both checked with
/// redis-cli; `-c` over plaintext follows MOVED to plaintext ports, over TLS to TLS ports.
#[tokio::test]
async fn the_binary_serves_plaintext_and_tls_together() {
    if !redis_cli_available() {
        return;
    }
    let tls = ServerTls::generate().unwrap();
    let ca = temp_file("ca.pem", tls.ca_pem());
    let cert = temp_file("node.crt", tls.cert_pem());
    let key = temp_file("node.key", tls.key_pem());
    // Twelve free ports in a row: TLS on the first six, plaintext on the next six.
    let base = support::server_bin::free_port_run(12);
    let plain = base + 6;
    let _server = Killed(
        Command::new(env!("CARGO_BIN_EXE_redcluster-server"))
            .args(["--primaries", "3", "--replicas-per-primary", "1"])
            .args([
                "--tls-port",
                &base.to_string(),
                "--port",
                &plain.to_string(),
            ])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&ca)
            .args(["--tls-auth-clients", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for i in 0..6 {
        while cli_tls(&ca, &[], base + i, &["PING"]).await.trim() != "PONG"
            || support::real_cluster::cli(plain + i, &["PING"]).trim() != "PONG"
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {i} never answered on both ports"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Keys over all three primaries: written over plaintext, read back over TLS, and the
    // other way round.
    for i in 0..12 {
        let k = format!("both:{i}");
        let out = support::real_cluster::cli(plain, &["-c", "SET", &k, &format!("p{i}")]);
        assert_eq!(out.trim(), "OK", "plaintext SET {k}: {out}");
        let out = cli_tls(&ca, &[], base, &["-c", "GET", &k]).await;
        assert_eq!(out.trim(), format!("p{i}"), "TLS GET {k}: {out}");
        let out = cli_tls(&ca, &[], base, &["-c", "SET", &k, &format!("t{i}")]).await;
        assert_eq!(out.trim(), "OK", "TLS SET {k}: {out}");
        let out = support::real_cluster::cli(plain, &["-c", "GET", &k]);
        assert_eq!(out.trim(), format!("t{i}"), "plaintext GET {k}: {out}");
    }
    // A redirect on a plaintext connection names a plaintext port.
    let moved = (0..64)
        .map(|i| support::real_cluster::cli(plain, &["SET", &format!("m:{i}"), "v"]))
        .find(|r| r.starts_with("MOVED"))
        .expect("some key lives on another node");
    let port: u16 = moved.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!((plain..plain + 6).contains(&port), "{moved}");
    // A TLS port spoken to in plaintext does not answer PONG (and does not hang).
    let out = support::real_cluster::cli(base, &["PING"]);
    assert_ne!(out.trim(), "PONG", "{out}");
}

/// A rustls client trusting `tls`'s CA.
fn connector(tls: &ServerTls) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(tls.ca_pem().as_bytes()) {
        roots.add(ca.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// What a server listening with TLS on `port` does past `maxclients`: one TLS client sets
/// `maxclients 1` and stays connected; then a raw socket reads what the server sends before
/// closing, and a rustls client tries a handshake. Returns (bytes the raw socket got,
/// whether the handshake succeeded).
async fn past_maxclients_over_tls(port: u16, tls: &ServerTls) -> (Vec<u8>, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut held = connector(tls).connect(name.clone(), tcp).await.unwrap();
    held.write_all(b"CONFIG SET maxclients 1\r\n")
        .await
        .unwrap();
    let mut reply = [0u8; 64];
    let n = held.read(&mut reply).await.unwrap();
    assert_eq!(&reply[..n], b"+OK\r\n");

    let mut raw = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut got = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut got)).await;
    assert!(closed.is_ok(), "the refused connection is closed");
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let handshake =
        tokio::time::timeout(Duration::from_secs(10), connector(tls).connect(name, tcp))
            .await
            .expect("the handshake ends");
    // The held client still works.
    held.write_all(b"PING\r\n").await.unwrap();
    let n = held.read(&mut reply).await.unwrap();
    assert_eq!(&reply[..n], b"+PONG\r\n");
    (got, handshake.is_ok())
}

/// Past maxclients a TLS port writes nothing and drops the connection, as redis-server
/// does (its admission comes before the handshake): never Redis' error in plaintext, which
/// a TLS client reads as a corrupt record. Compared with a real redis-server on TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_maxclients_a_tls_port_drops_the_connection_as_redis_does() {
    let tls = ServerTls::generate().unwrap();
    let cluster = TestCluster::builder()
        .primaries(1)
        .tls(tls.clone())
        .start()
        .await
        .unwrap();
    let port = cluster.nodes()[0].addr.port();
    let (got, handshake) = past_maxclients_over_tls(port, &tls).await;
    assert_eq!(
        String::from_utf8_lossy(&got),
        "",
        "nothing written in plaintext"
    );
    assert!(!handshake, "no TLS session for a refused client");
    cluster.shutdown().await;

    if !support::real_cluster::redis_available() {
        return;
    }
    let cert = temp_file("node.crt", tls.cert_pem());
    let dir = cert.parent().unwrap().to_path_buf();
    std::fs::write(dir.join("node.key"), tls.key_pem()).unwrap();
    std::fs::write(dir.join("ca.crt"), tls.ca_pem()).unwrap();
    let port = support::real_cluster::free_port();
    let _real = Killed(
        Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--tls-auth-clients",
                "optional",
            ])
            .arg("--dir")
            .arg(&dir)
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(dir.join("node.key"))
            .arg("--tls-ca-cert-file")
            .arg(dir.join("ca.crt"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server"),
    );
    let ca = dir.join("ca.crt");
    let mut up = false;
    for _ in 0..200 {
        if cli_tls(&ca, &[], port, &["PING"]).await.trim() == "PONG" {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "redis-server with TLS started");
    let (got, handshake) = past_maxclients_over_tls(port, &tls).await;
    assert_eq!(
        String::from_utf8_lossy(&got),
        "",
        "redis-server writes nothing either"
    );
    assert!(!handshake);
    let _ = std::fs::remove_dir_all(&dir);
}
