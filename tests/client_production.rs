//! Reaching clusters the way production does: `redis://` URLs with named users, TLS,
//! hostname endpoints, address maps and rotating credentials.

mod support;

use redcluster::server::TestCluster;
use redcluster::{Client, ReadFrom};

/// The seeds of `cluster` as the host list of a URL.
fn url_hosts(cluster: &TestCluster) -> String {
    let seeds: Vec<String> = cluster.seeds().iter().map(|a| a.to_string()).collect();
    seeds.join(",")
}

#[tokio::test]
async fn url_with_a_named_user_and_options_reaches_the_cluster() {
    let cluster = TestCluster::builder()
        .primaries(3)
        .replicas_per_primary(1)
        .requirepass("default-pw")
        .user("app", "p@ss:w/rd")
        .start()
        .await
        .unwrap();
    let url = format!(
        "redis://app:p%40ss%3Aw%2Frd@{}?read_from=replica_preferred&protocol=3\
         &client_name=url-test&request_timeout_ms=3000",
        url_hosts(&cluster)
    );
    let client = Client::from_url(&url).unwrap().build().await.unwrap();
    client.set("url:k", "v").await.unwrap();
    let v: Option<String> = client.get("url:k").await.unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    let who: String = client.cmd("CLIENT").arg("GETNAME").query().await.unwrap();
    assert_eq!(who, "url-test");

    // The same cluster with the wrong password: an auth error naming nobody's password.
    let url = format!("redis://app:wrong-pw@{}", url_hosts(&cluster));
    let e = Client::from_url(&url).unwrap().build().await.unwrap_err();
    assert!(!e.to_string().contains("wrong-pw"), "{e}");

    // And the builder form: options after the URL refine it.
    let client = Client::builder(["unused:1"])
        .url(&format!("valkey://:default-pw@{}", url_hosts(&cluster)))
        .unwrap()
        .read_from(ReadFrom::Primary)
        .build()
        .await
        .unwrap();
    client.set("url:k2", 1).await.unwrap();
}

#[cfg(feature = "tls")]
mod tls {
    use std::time::Duration;

    use redcluster::server::{ServerTls, TestCluster, TlsAuthClients};
    use redcluster::{Client, ErrorKind, ReadFrom, TlsConfig};

    use super::url_hosts;

    async fn tls_cluster(tls: &ServerTls) -> TestCluster {
        TestCluster::builder()
            .primaries(3)
            .replicas_per_primary(1)
            .tls(tls.clone())
            .start()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn rediss_url_with_a_custom_ca_routes_and_reads_replicas() {
        let tls = ServerTls::generate().unwrap();
        let cluster = tls_cluster(&tls).await;
        let url = format!("rediss://{}?read_from=replica", url_hosts(&cluster));
        let client = Client::from_url(&url)
            .unwrap()
            .tls(TlsConfig::new().ca_pem(tls.ca_pem().as_bytes()))
            .build()
            .await
            .unwrap();
        for i in 0..50 {
            client.set(format!("t:{i}").as_str(), i).await.unwrap();
        }
        // Replica reads over TLS: every value eventually readable from the replicas.
        for i in 0..50 {
            let key = format!("t:{i}");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let v: Option<i64> = client.get(key.as_str()).await.unwrap();
                if v == Some(i) {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{key} never replicated"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let replica_reads: u64 = client
            .stats()
            .requests_per_node
            .iter()
            .filter(|(addr, _)| {
                cluster.nodes().iter().any(|n| {
                    n.addr.to_string() == **addr && n.role == redcluster::server::Role::Replica
                })
            })
            .map(|(_, n)| *n)
            .sum();
        assert!(replica_reads >= 50, "replica reads: {replica_reads}");
        let _ = ReadFrom::Replica;
    }

    /// A pipeline of ~12 MiB each way (writes larger than the socket takes at once, replies
    /// spread over many reads), many tasks on one connection, and connections the server
    /// closes, all over TLS: every reply is the right one.
    #[tokio::test]
    async fn large_and_concurrent_traffic_over_tls_stays_in_order() {
        let tls = ServerTls::generate().unwrap();
        let cluster = tls_cluster(&tls).await;
        let client = Client::builder(cluster.seeds())
            .tls(TlsConfig::new().ca_pem(tls.ca_pem().as_bytes()))
            .build()
            .await
            .unwrap();
        // ~12 MiB in one pipeline on one connection (one hash tag: one node).
        let value = |i: usize| format!("{i:08}").repeat(2048);
        let mut pipe = client.pipeline();
        for i in 0..800 {
            pipe.cmd("SET").arg(format!("{{big}}:{i}")).arg(value(i));
        }
        for i in 0..800 {
            pipe.cmd("GET").arg(format!("{{big}}:{i}"));
        }
        let replies: Vec<redcluster::Value> = pipe.query().await.unwrap();
        for (i, v) in replies[800..].iter().enumerate() {
            assert_eq!(
                *v,
                redcluster::Value::BulkString(value(i).into()),
                "GET {{big}}:{i}"
            );
        }
        // Many tasks sharing the connections, each checking its own replies.
        let tasks: Vec<_> = (0..64)
            .map(|t| {
                let client = client.clone();
                tokio::spawn(async move {
                    for i in 0..50 {
                        let key = format!("{{small}}:{t}:{i}");
                        client.set(key.as_str(), format!("{t}-{i}")).await.unwrap();
                        let v: Option<String> = client.get(key.as_str()).await.unwrap();
                        assert_eq!(v, Some(format!("{t}-{i}")));
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // The server closes every client connection: reads carry on over new ones.
        let other = Client::builder(cluster.seeds())
            .tls(TlsConfig::new().ca_pem(tls.ca_pem().as_bytes()))
            .build()
            .await
            .unwrap();
        let killed = other
            .cmd("CLIENT")
            .arg("KILL")
            .arg("USER")
            .arg("default")
            .arg("SKIPME")
            .arg("yes")
            .query_per_node::<i64>(redcluster::Nodes::All)
            .await;
        let total: i64 = killed.into_iter().map(|(_, n)| n.unwrap()).sum();
        assert!(total >= 1, "the first client's connections were closed");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match client.get::<Option<String>>("{big}:7").await {
                Ok(v) => {
                    assert_eq!(v, Some(value(7)));
                    break;
                }
                Err(e) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "no recovery after the server closed the connections: {e}"
                ),
            }
        }
    }

    #[tokio::test]
    async fn mutual_tls_wrong_ca_and_wrong_name_fail_with_clear_errors() {
        let tls = ServerTls::generate()
            .unwrap()
            .auth_clients(TlsAuthClients::Yes);
        let cluster = tls_cluster(&tls).await;
        let (cert, key) = tls.client_cert("app").unwrap().unwrap();
        let ca = tls.ca_pem().as_bytes();
        let base = || {
            Client::builder(cluster.seeds())
                .connect_timeout(Duration::from_secs(2))
                .request_timeout(Duration::from_secs(3))
        };
        let client = base()
            .tls(
                TlsConfig::new()
                    .ca_pem(ca)
                    .client_cert_pem(cert.as_bytes(), key.as_bytes()),
            )
            .build()
            .await
            .unwrap();
        client.set("m", 1).await.unwrap();

        let seed = cluster.seeds()[0].to_string();
        let no_cert = base()
            .tls(TlsConfig::new().ca_pem(ca))
            .build()
            .await
            .unwrap_err();
        assert!(no_cert.to_string().contains(&seed), "{no_cert}");

        let other = ServerTls::generate().unwrap();
        let wrong_ca = base()
            .tls(TlsConfig::new().ca_pem(other.ca_pem().as_bytes()))
            .build()
            .await
            .unwrap_err();
        let text = wrong_ca.to_string();
        assert!(
            text.contains("unknown CA") && text.contains(&seed),
            "{text}"
        );

        let wrong_name = base()
            .tls(
                TlsConfig::new()
                    .ca_pem(ca)
                    .client_cert_pem(cert.as_bytes(), key.as_bytes())
                    .server_name("not-this-cluster.example"),
            )
            .build()
            .await
            .unwrap_err();
        assert!(
            wrong_name.to_string().contains("not valid for this name"),
            "{wrong_name}"
        );
        assert!(!format!("{wrong_name:?}").contains("PRIVATE KEY"));
    }

    /// A node certificate whose validity ended in the past (made with rcgen): the client
    /// refuses it with an error naming the node and saying "expired", within
    /// `connect_timeout`, never hanging.
    #[tokio::test]
    async fn an_expired_node_certificate_is_a_clear_error() {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "expired-cert test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        let tls = ServerTls::from_pem(
            cert.pem().as_bytes(),
            key.serialize_pem().as_bytes(),
            ca.pem().as_bytes(),
        )
        .unwrap();
        // Primaries only: no replication link has to accept the expired certificate.
        let cluster = TestCluster::builder()
            .primaries(3)
            .tls(tls)
            .start()
            .await
            .unwrap();
        let e = tokio::time::timeout(
            Duration::from_secs(10),
            Client::builder(cluster.seeds())
                .tls(TlsConfig::new().ca_pem(ca.pem().as_bytes()))
                .connect_timeout(Duration::from_secs(2))
                .build(),
        )
        .await
        .expect("an expired certificate hung the client")
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("expired"), "{text}");
        let seed = cluster.seeds()[0].to_string();
        assert!(text.contains(&seed), "{text}");
        assert!(!format!("{e:?}").contains("PRIVATE KEY"));
    }

    #[tokio::test]
    async fn plaintext_and_tls_mismatches_fail_fast() {
        let tls = ServerTls::generate().unwrap();
        let secure = tls_cluster(&tls).await;
        let plain = TestCluster::builder().primaries(3).start().await.unwrap();
        // TLS client, plaintext server.
        let e = tokio::time::timeout(
            Duration::from_secs(10),
            Client::from_url(&format!("rediss://{}", url_hosts(&plain)))
                .unwrap()
                .tls(TlsConfig::new().ca_pem(tls.ca_pem().as_bytes()))
                .connect_timeout(Duration::from_secs(2))
                .build(),
        )
        .await
        .expect("TLS client on a plaintext server hung")
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.to_string().contains("TLS"), "{e}");
        // Plaintext client, TLS server.
        let e = tokio::time::timeout(
            Duration::from_secs(10),
            Client::builder(secure.seeds())
                .connect_timeout(Duration::from_secs(2))
                .build(),
        )
        .await
        .expect("plaintext client on a TLS server hung")
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    }
}

/// Nodes announcing hostnames that resolve nowhere: reached only through `address_map`.
/// Routing, MOVED (naming a hostname) and replica reads all go through the map.
#[tokio::test]
async fn hostname_endpoints_through_an_address_map() {
    use redcluster::slot::key_slot;
    use std::collections::HashMap;
    use std::time::Duration;
    use support::bundled::{move_slot, primaries};
    use support::raw::{node_cmd, text};
    let cluster = TestCluster::builder()
        .primaries(3)
        .replicas_per_primary(1)
        .start()
        .await
        .unwrap();
    let mut names = HashMap::new();
    for (i, n) in cluster.nodes().iter().enumerate() {
        let host = format!("node-{i}.cluster.invalid");
        let addr = n.addr.to_string();
        for (k, v) in [
            ("cluster-announce-hostname", host.as_str()),
            ("cluster-preferred-endpoint-type", "hostname"),
        ] {
            assert_eq!(text(&node_cmd(&addr, &["CONFIG", "SET", k, v]).await), "OK");
        }
        names.insert(host, n.addr.port());
    }
    let map = move |host: &str, port: u16| match names.get(host) {
        Some(p) => ("127.0.0.1".to_string(), *p),
        None => (host.to_string(), port),
    };
    // Gossip spreads the hostnames; a client built once they are all announced sees only
    // names it cannot resolve without the map.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let client = loop {
        let client = Client::builder(cluster.seeds())
            .read_from(ReadFrom::ReplicaPreferred)
            .address_map(map.clone())
            .build()
            .await
            .unwrap();
        let topo = client.topology();
        let named = |a: &str| a.contains(".cluster.invalid");
        if topo.shards().iter().all(|s| {
            named(&s.primary.addr)
                && s.replicas.len() == 1
                && s.replicas.iter().all(|r| named(&r.addr))
        }) {
            break client;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "hostnames never announced"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for i in 0..100 {
        client.set(format!("h:{i}").as_str(), i).await.unwrap();
    }
    let mut via_names = 0;
    for i in 0..100 {
        let key = format!("h:{i}");
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
    for (addr, n) in client.stats().requests_per_node.iter() {
        if addr.contains(".cluster.invalid") {
            via_names += n;
        }
    }
    assert!(
        via_names >= 200,
        "requests through announced names: {via_names}"
    );

    // Move the slot of one key: the client's next write is MOVED to a hostname.
    let key = "h:moved";
    client.set(key, "before").await.unwrap();
    let slot = key_slot(key.as_bytes());
    let ps = primaries(&cluster);
    let owner = text(&node_cmd(&ps[0].0, &["CLUSTER", "NODES"]).await);
    let src = ps
        .iter()
        .find(|(addr, _)| {
            owner.lines().any(|l| {
                l.contains(addr.as_str())
                    && l.split(' ').skip(8).any(|r| {
                        let (a, b) = r.split_once('-').unwrap_or((r, r));
                        matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&slot))
                    })
            })
        })
        .unwrap()
        .0
        .clone();
    let dst = ps.iter().find(|(a, _)| *a != src).unwrap().0.clone();
    move_slot(&cluster, slot, &src, &dst).await;
    let moved_before = client.stats().moved;
    client.set(key, "after").await.unwrap();
    assert!(client.stats().moved > moved_before, "no MOVED was followed");
    let v: Option<String> = client.cmd("GET").arg(key).query().await.unwrap();
    assert!(matches!(v.as_deref(), Some("after") | Some("before")));
}

/// The whole cluster stopped and started again on other ports, reachable only through the
/// seed's name (resolved here by `address_map`, as DNS would after the restart): the same
/// client finds it again from the seed, without being rebuilt, although the new cluster's
/// config epochs are lower than the old one's and only one node (the seed) vouches for its
/// view. Prints the time from the restart to the first successful request.
#[tokio::test]
async fn whole_cluster_restarted_on_new_ports_is_found_again_through_the_seeds() {
    use std::collections::{HashMap, HashSet};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let first = TestCluster::builder().primaries(3).start().await.unwrap();
    let names: Arc<Mutex<HashMap<String, u16>>> = Arc::new(Mutex::new(HashMap::new()));
    let point = |cluster: &TestCluster| {
        let mut m = names.lock().unwrap();
        for (i, a) in cluster.seeds().iter().enumerate() {
            m.insert(format!("seed-{i}.cluster.invalid"), a.port());
        }
    };
    point(&first);
    let resolve = names.clone();
    let map = move |host: &str, port: u16| match resolve.lock().unwrap().get(host) {
        Some(p) => ("127.0.0.1".to_string(), *p),
        None => (host.to_string(), port),
    };
    // The old cluster has lived through epochs the new one has not reached.
    for a in first.seeds() {
        let r = support::raw::text(
            &support::raw::node_cmd(&a.to_string(), &["CLUSTER", "BUMPEPOCH"]).await,
        );
        assert!(r.starts_with("BUMPED") || r.starts_with("STILL"), "{r}");
    }
    let seeds = ["seed-0.cluster.invalid:6379"];
    let client = Client::builder(seeds)
        .address_map(map)
        .request_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    client.set("restart:k", 1).await.unwrap();
    let old_epoch = client.topology().epoch();
    let old_ports: HashSet<u16> = first.nodes().iter().map(|n| n.addr.port()).collect();
    first.shutdown().await;

    // The same cluster shape comes back on ports none of the old nodes had.
    let mut tries = 0;
    let second = loop {
        let c = TestCluster::builder().primaries(3).start().await.unwrap();
        if c.nodes()
            .iter()
            .all(|n| !old_ports.contains(&n.addr.port()))
        {
            break c;
        }
        tries += 1;
        assert!(tries < 10, "the OS keeps handing out the old ports");
    };
    point(&second);
    let restarted = Instant::now();
    let mut failures = 0u32;
    let last = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match client.set("restart:k", 2).await {
                Ok(()) => return None,
                Err(e) => {
                    failures += 1;
                    if failures > 100 {
                        return Some(e);
                    }
                }
            }
        }
    })
    .await
    .expect("the client never found the restarted cluster");
    assert!(last.is_none(), "still failing: {last:?}");
    println!(
        "restart -> first successful request: {:?} ({failures} failed requests before)",
        restarted.elapsed()
    );
    let fresh = Client::builder(second.seeds()).build().await.unwrap();
    let new_epoch = fresh.topology().epoch();
    assert!(
        new_epoch < old_epoch,
        "the test wants a restarted cluster with lower epochs ({new_epoch} vs {old_epoch})"
    );
    let new_addrs: HashSet<String> = second.nodes().iter().map(|n| n.addr.to_string()).collect();
    let topo = client.topology();
    assert!(
        topo.shards()
            .iter()
            .all(|s| new_addrs.contains(&s.primary.addr)),
        "the client still routes to the old nodes"
    );
    let v: Option<i64> = client.get("restart:k").await.unwrap();
    assert_eq!(v, Some(2));
}
