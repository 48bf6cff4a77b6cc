//! The client over TLS against a real `redis-server` 7 cluster (`--tls-port`, `--port 0`,
//! `--tls-cluster yes`, `--tls-replication yes`) with certificates the test generates: a
//! custom CA, mutual TLS, replica reads, and a wrong CA rejected with a clear error.
#![cfg(feature = "tls")]

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use redcluster::server::ServerTls;
use redcluster::{Client, ReadFrom, TlsConfig};
use support::real_cluster::{free_port, redis_available};
use support::wait::wait_until;

/// Six TLS-only redis-server processes (3 primaries + 3 replicas), killed on drop.
struct TlsRealCluster {
    ports: Vec<u16>,
    watchdogs: Vec<Child>,
    dir: PathBuf,
}

impl Drop for TlsRealCluster {
    fn drop(&mut self) {
        for w in &mut self.watchdogs {
            if let Some(stdin) = w.stdin.as_mut() {
                let _ = stdin.write_all(b"\n");
            }
            let _ = w.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn cli_tls(dir: &Path, port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["--tls", "--cacert"])
        .arg(dir.join("ca.crt"))
        .arg("--cert")
        .arg(dir.join("node.crt"))
        .arg("--key")
        .arg(dir.join("node.key"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn start(tls: &ServerTls) -> Option<TlsRealCluster> {
    if !redis_available() {
        return None;
    }
    let dir = std::env::temp_dir().join(format!(
        "redcluster-real-tls-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.crt"), tls.ca_pem()).unwrap();
    std::fs::write(dir.join("node.crt"), tls.cert_pem()).unwrap();
    std::fs::write(dir.join("node.key"), tls.key_pem()).unwrap();
    let mut cluster = TlsRealCluster {
        ports: Vec::new(),
        watchdogs: Vec::new(),
        dir: dir.clone(),
    };
    for _ in 0..6 {
        let port = free_port();
        let bus = free_port();
        let conf = dir.join(format!("node-{port}.conf"));
        let text = format!(
            "port 0\ntls-port {port}\nbind 127.0.0.1\ncluster-enabled yes\ncluster-port {bus}\n\
             cluster-config-file nodes-{port}.conf\ncluster-node-timeout 2000\nsave \"\"\n\
             appendonly no\ndir {d}\nlogfile redis-{port}.log\nprotected-mode no\n\
             tls-cert-file {d}/node.crt\ntls-key-file {d}/node.key\ntls-ca-cert-file {d}/ca.crt\n\
             tls-cluster yes\ntls-replication yes\ntls-auth-clients optional\n",
            d = dir.display()
        );
        std::fs::write(&conf, text).unwrap();
        let script = format!(
            "redis-server {} & p=$!; read -r _; kill -9 $p 2>/dev/null; wait $p 2>/dev/null",
            conf.display()
        );
        let child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        cluster.watchdogs.push(child);
        cluster.ports.push(port);
        wait_until(Duration::from_secs(10), || {
            cli_tls(&dir, port, &["PING"]).trim() == "PONG"
        });
    }
    let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
    args.extend(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")));
    args.extend([
        "--cluster-replicas".into(),
        "1".into(),
        "--cluster-yes".into(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cli_tls(&dir, cluster.ports[0], &refs);
    assert!(out.contains("All 16384 slots covered"), "{out}");
    for &p in &cluster.ports {
        wait_until(Duration::from_secs(20), || {
            let info = cli_tls(&dir, p, &["CLUSTER", "INFO"]);
            let repl = cli_tls(&dir, p, &["INFO", "replication"]);
            info.contains("cluster_state:ok")
                && info.contains("cluster_known_nodes:6")
                && (repl.contains("role:master") || repl.contains("master_link_status:up"))
        });
    }
    Some(cluster)
}

#[tokio::test]
async fn tls_against_a_real_redis_cluster() {
    let tls = ServerTls::generate().unwrap();
    let Some(real) = start(&tls) else {
        return;
    };
    let hosts: Vec<String> = real
        .ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let ca = tls.ca_pem().as_bytes();

    // rediss:// with a custom CA; replica reads over TLS.
    let url = format!("rediss://{}?read_from=replica_preferred", hosts.join(","));
    let client = Client::from_url(&url)
        .unwrap()
        .tls(TlsConfig::new().ca_pem(ca))
        .build()
        .await
        .unwrap();
    for i in 0..30 {
        client
            .set(format!("real-tls:{i}").as_str(), i)
            .await
            .unwrap();
    }
    for i in 0..30 {
        let key = format!("real-tls:{i}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let v: Option<i64> = client.get(key.as_str()).await.unwrap();
            if v == Some(i) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{key} never readable"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let topo = client.topology();
    let replicas: Vec<String> = topo
        .shards()
        .iter()
        .flat_map(|s| s.replicas.iter().map(|r| r.addr.clone()))
        .collect();
    assert_eq!(replicas.len(), 3, "{topo:?}");
    let stats = client.stats();
    let on_replicas: u64 = stats
        .requests_per_node
        .iter()
        .filter(|(a, _)| replicas.contains(a))
        .map(|(_, n)| *n)
        .sum();
    assert!(on_replicas >= 30, "reads served by replicas: {on_replicas}");

    // Mutual TLS: a client certificate signed by the CA is accepted.
    let (cert, key) = tls.client_cert("app").unwrap().unwrap();
    let client = Client::builder(hosts.clone())
        .read_from(ReadFrom::Primary)
        .tls(
            TlsConfig::new()
                .ca_pem(ca)
                .client_cert_pem(cert.as_bytes(), key.as_bytes()),
        )
        .build()
        .await
        .unwrap();
    let v: Option<i64> = client.get("real-tls:3").await.unwrap();
    assert_eq!(v, Some(3));

    // A CA the cluster's certificates do not chain to: refused, saying why and where.
    let other = ServerTls::generate().unwrap();
    let e = Client::builder(hosts.clone())
        .connect_timeout(Duration::from_secs(2))
        .tls(TlsConfig::new().ca_pem(other.ca_pem().as_bytes()))
        .build()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown CA"), "{e}");
    assert!(e.to_string().contains(&hosts[0]), "{e}");
}
