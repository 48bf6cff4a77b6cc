//! The clients under test and what each one does for one operation of every workload.

use bytes::Bytes;
use fred::interfaces::{ClientLike, KeysInterface};

use crate::tls::rustls_config;

/// One client under test. Ours and fred are the same type against a cluster and a single
/// server; the `redis` crate has a cluster connection and a multiplexed single-server one.
#[derive(Clone)]
pub enum Peer {
    Ours(redcluster::Client),
    /// Ours with `ClientBuilder::client_cache`.
    OursCached(redcluster::Client),
    RedisRs(redis::cluster_async::ClusterConnection),
    /// The `redis` crate's cluster connection with its `cache-aio` client-side cache.
    RedisRsCached(redis::cluster_async::ClusterConnection),
    /// The `redis` crate against one server: its multiplexed connection.
    RedisRsMux(redis::aio::MultiplexedConnection),
    Fred(fred::clients::Client),
}

/// One GET or SET through any `redis` crate connection.
async fn redis_rs_op<C: redis::aio::ConnectionLike>(
    c: &mut C,
    key: &str,
    value: &Bytes,
    get: bool,
) -> Result<(), String> {
    if get {
        redis::cmd("GET")
            .arg(key)
            .query_async::<Option<Vec<u8>>>(c)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    } else {
        redis::cmd("SET")
            .arg(key)
            .arg(&value[..])
            .query_async::<()>(c)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Peer {
    pub fn name(&self) -> &'static str {
        match self {
            Peer::Ours(_) => "redcluster",
            Peer::OursCached(_) => "redcluster+cache",
            Peer::RedisRs(_) | Peer::RedisRsMux(_) => "redis-rs",
            Peer::RedisRsCached(_) => "redis-rs+cache-aio",
            Peer::Fred(_) => "fred",
        }
    }

    pub async fn op(&mut self, key: &str, value: &Bytes, get: bool) -> Result<(), String> {
        match self {
            Peer::Ours(c) | Peer::OursCached(c) => {
                if get {
                    c.cmd("GET")
                        .arg(key)
                        .query::<Option<Bytes>>()
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                } else {
                    c.cmd("SET")
                        .arg(key)
                        .arg(value.clone())
                        .query::<()>()
                        .await
                        .map_err(|e| e.to_string())
                }
            }
            Peer::RedisRs(c) | Peer::RedisRsCached(c) => redis_rs_op(c, key, value, get).await,
            Peer::RedisRsMux(c) => redis_rs_op(c, key, value, get).await,
            Peer::Fred(c) => {
                if get {
                    c.get::<Option<Bytes>, _>(key)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                } else {
                    c.set::<(), _, _>(key, value.clone(), None, None, false)
                        .await
                        .map_err(|e| e.to_string())
                }
            }
        }
    }

    /// One 1,000-command pipeline: GET for even positions, SET for odd ones.
    pub async fn pipeline(&mut self, keys: &[String], value: &Bytes) -> Result<(), String> {
        match self {
            Peer::Ours(c) => {
                let mut p = c.pipeline();
                for (i, k) in keys.iter().enumerate() {
                    if i % 2 == 0 {
                        p.cmd("GET").arg(k.as_str());
                    } else {
                        p.cmd("SET").arg(k.as_str()).arg(value.clone());
                    }
                }
                let r: Vec<redcluster::Value> = p.query().await.map_err(|e| e.to_string())?;
                check_len(r.len(), keys.len())
            }
            Peer::RedisRs(c) => {
                // Cluster pipelines must stay in one slot: one pipeline per slot, all sent
                // concurrently, replies put back in order.
                let groups = by_slot(keys);
                let runs = groups.iter().map(|idx| {
                    let mut pipe = redis::pipe();
                    for &i in idx {
                        if i % 2 == 0 {
                            pipe.cmd("GET").arg(&keys[i]);
                        } else {
                            pipe.cmd("SET").arg(&keys[i]).arg(&value[..]);
                        }
                    }
                    let mut c = c.clone();
                    async move { pipe.query_async::<Vec<redis::Value>>(&mut c).await }
                });
                let mut out: Vec<Option<redis::Value>> = vec![None; keys.len()];
                for (idx, r) in groups.iter().zip(futures::future::join_all(runs).await) {
                    let r = r.map_err(|e| e.to_string())?;
                    for (&i, v) in idx.iter().zip(r) {
                        out[i] = Some(v);
                    }
                }
                check_len(out.iter().flatten().count(), keys.len())
            }
            Peer::Fred(c) => {
                let p = c.pipeline();
                for (i, k) in keys.iter().enumerate() {
                    if i % 2 == 0 {
                        p.get::<(), _>(k.as_str())
                            .await
                            .map_err(|e| e.to_string())?;
                    } else {
                        p.set::<(), _, _>(k.as_str(), value.clone(), None, None, false)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                }
                let r: Vec<fred::types::Value> = p.all().await.map_err(|e| e.to_string())?;
                check_len(r.len(), keys.len())
            }
            other => Err(format!("{}: no pipeline workload", other.name())),
        }
    }

    /// One MGET of `keys` (across slots), values in key order.
    pub async fn mget(&mut self, keys: &[String]) -> Result<(), String> {
        match self {
            Peer::Ours(c) => {
                let r: Vec<Option<Bytes>> = c
                    .cmd("MGET")
                    .args(keys)
                    .query()
                    .await
                    .map_err(|e| e.to_string())?;
                check_len(r.len(), keys.len())
            }
            Peer::RedisRs(c) => {
                // redis-rs splits multi-slot MGET itself.
                let r: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                    .arg(keys)
                    .query_async(c)
                    .await
                    .map_err(|e| e.to_string())?;
                check_len(r.len(), keys.len())
            }
            Peer::Fred(c) => {
                // Keys must share a slot: split by slot by hand, concurrently, merge in order.
                let groups = by_slot(keys);
                let runs = groups.iter().map(|idx| {
                    let ks: Vec<String> = idx.iter().map(|&i| keys[i].clone()).collect();
                    let c = c.clone();
                    async move {
                        if ks.len() == 1 {
                            c.get::<Option<Bytes>, _>(ks[0].as_str())
                                .await
                                .map(|v| vec![v])
                        } else {
                            c.mget::<Vec<Option<Bytes>>, _>(ks).await
                        }
                    }
                });
                let mut out: Vec<Option<Option<Bytes>>> = vec![None; keys.len()];
                for (idx, r) in groups.iter().zip(futures::future::join_all(runs).await) {
                    let r = r.map_err(|e| e.to_string())?;
                    for (&i, v) in idx.iter().zip(r) {
                        out[i] = Some(v);
                    }
                }
                check_len(out.iter().flatten().count(), keys.len())
            }
            other => Err(format!("{}: no MGET workload", other.name())),
        }
    }
}

pub fn check_len(got: usize, want: usize) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{got} replies for {want} commands"))
    }
}

/// Key positions grouped by slot, each group in key order.
pub fn by_slot(keys: &[String]) -> Vec<Vec<usize>> {
    let mut groups: std::collections::HashMap<u16, Vec<usize>> = Default::default();
    for (i, k) in keys.iter().enumerate() {
        groups
            .entry(redcluster::slot::key_slot(k.as_bytes()))
            .or_default()
            .push(i);
    }
    groups.into_values().collect()
}

/// Connect `which` client to the cluster behind `seeds`.
pub async fn connect(which: &str, seeds: &[String], tls: Option<&[u8]>) -> Peer {
    match which {
        "redcluster" => {
            let mut builder = redcluster::Client::builder(seeds);
            if let Some(ca) = tls {
                builder = builder.tls(redcluster::TlsConfig::new().ca_pem(ca));
            }
            Peer::Ours(builder.build().await.expect("redcluster connect"))
        }
        "redcluster+cache" => {
            let mut builder =
                redcluster::Client::builder(seeds).client_cache(redcluster::ClientCache::new());
            if let Some(ca) = tls {
                builder = builder.tls(redcluster::TlsConfig::new().ca_pem(ca));
            }
            Peer::OursCached(builder.build().await.expect("redcluster connect"))
        }
        "redis-rs+cache-aio" => {
            let urls: Vec<String> = seeds.iter().map(|s| format!("redis://{s}")).collect();
            let client = redis::cluster::ClusterClientBuilder::new(urls)
                .use_protocol(redis::ProtocolVersion::RESP3)
                .cache_config(redis::caching::CacheConfig::new())
                .build()
                .expect("redis-rs client");
            Peer::RedisRsCached(
                client
                    .get_async_connection()
                    .await
                    .expect("redis-rs connect"),
            )
        }
        "redis-rs" => {
            let scheme = if tls.is_some() { "rediss" } else { "redis" };
            let urls: Vec<String> = seeds.iter().map(|s| format!("{scheme}://{s}")).collect();
            let mut builder = redis::cluster::ClusterClientBuilder::new(urls);
            if let Some(ca) = tls {
                builder = builder.certs(redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.to_vec()),
                });
            }
            let client = builder.build().expect("redis-rs client");
            Peer::RedisRs(
                client
                    .get_async_connection()
                    .await
                    .expect("redis-rs connect"),
            )
        }
        "fred" => {
            let scheme = if tls.is_some() { "rediss" } else { "redis" };
            let mut url = format!("{scheme}-cluster://{}", seeds[0]);
            for (i, s) in seeds[1..].iter().enumerate() {
                url.push(if i == 0 { '?' } else { '&' });
                url.push_str(&format!("node={s}"));
            }
            let mut config = fred::types::config::Config::from_url(&url).expect("fred config");
            if let Some(ca) = tls {
                let connector = fred::types::config::TlsConnector::from(rustls_config(ca));
                config.tls = Some(connector.into());
            }
            let client = fred::types::Builder::from_config(config)
                .build()
                .expect("fred client");
            client.init().await.expect("fred connect");
            Peer::Fred(client)
        }
        other => panic!("unknown client {other}"),
    }
}

/// Connect `which` client to the single (standalone) server at `addr`: ours and fred as they
/// are, the `redis` crate through its multiplexed connection.
pub async fn connect_standalone(which: &str, addr: &str) -> Peer {
    match which {
        "redcluster" => Peer::Ours(
            redcluster::Client::builder([addr])
                .build()
                .await
                .expect("redcluster connect"),
        ),
        "redis-rs" => {
            let client = redis::Client::open(format!("redis://{addr}")).expect("redis-rs client");
            Peer::RedisRsMux(
                client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("redis-rs connect"),
            )
        }
        "fred" => {
            let config = fred::types::config::Config::from_url(&format!("redis://{addr}"))
                .expect("fred config");
            let client = fred::types::Builder::from_config(config)
                .build()
                .expect("fred client");
            client.init().await.expect("fred connect");
            Peer::Fred(client)
        }
        other => panic!("unknown client {other}"),
    }
}
