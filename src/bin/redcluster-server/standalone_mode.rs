//! `redcluster-server --standalone`: a standalone primary (cluster mode off) with replicas
//! on consecutive ports, optionally itself a replica of another server (`--replicaof`), and
//! bundled Sentinels watching it as `mymaster` (`--sentinels N`).

use std::process::ExitCode;

use redcluster::server::{Role, TestReplicaSet, TestSentinels};

/// The standalone options.
#[derive(Debug, Default)]
pub(crate) struct StandaloneArgs {
    /// Cluster mode off.
    pub(crate) on: bool,
    /// Replicas of the primary.
    pub(crate) replicas: usize,
    /// `--replicaof HOST PORT`: the primary replicates this server.
    pub(crate) replicaof: Option<(String, u16)>,
    /// Bundled Sentinels watching the primary as `mymaster` (quorum: a majority).
    pub(crate) sentinels: usize,
    /// `--sentinel-port`: the first Sentinel's port (the others follow); free ports without.
    pub(crate) sentinel_port: Option<u16>,
}

/// Start the replica set (and Sentinels), print the layout, serve until Ctrl-C.
pub(crate) async fn run(
    args: super::Args,
    base_port: u16,
    tls: Option<(u16, Option<u16>, super::TlsSettings)>,
) -> ExitCode {
    let opts = &args.standalone;
    if args.empty || args.replicas > 0 {
        eprintln!("redcluster-server: --standalone takes --replicas, not --empty or --replicas-per-primary");
        return ExitCode::from(2);
    }
    let mut builder = TestReplicaSet::builder()
        .replicas(opts.replicas)
        .base_port(base_port);
    if let Some(pass) = &args.requirepass {
        builder = builder.password(pass.clone());
    }
    for (name, rules) in &args.users {
        builder = builder.acl_user(name, rules);
    }
    for (name, value) in &args.settings {
        builder = builder.config(name, value);
    }
    match tls {
        #[cfg(feature = "tls")]
        Some((_, None, tls)) => builder = builder.tls(tls),
        Some(_) => {
            eprintln!("redcluster-server: --standalone serves TLS only (--tls-port with --port 0)");
            return ExitCode::from(2);
        }
        None => {}
    }
    let set = match builder.start().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("redcluster-server: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some((host, port)) = &opts.replicaof {
        set.replicaof(0, Some((host, *port)));
    }
    for node in set.nodes() {
        let role = match (node.role, &node.primary_id) {
            (Role::Replica, Some(p)) => format!("replica of {p}"),
            _ => "primary".to_string(),
        };
        println!("{} {} {role}", node.addr, node.id);
    }
    let mut sentinels = None;
    if opts.sentinels > 0 {
        let quorum = (opts.sentinels / 2 + 1) as u32;
        let mut b = TestSentinels::builder()
            .sentinels(opts.sentinels)
            .quorum(quorum)
            .monitor_addr("mymaster", set.primary());
        if let Some(port) = opts.sentinel_port {
            b = b.base_port(port);
        }
        if let Some(pass) = &args.requirepass {
            b = b.auth_pass(pass.clone());
        }
        match b.start().await {
            Ok(s) => {
                for addr in s.addrs() {
                    println!("{addr} sentinel monitoring mymaster quorum {quorum}");
                }
                sentinels = Some(s);
            }
            Err(e) => {
                eprintln!("redcluster-server: cannot start the Sentinels: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("ready; Ctrl-C to stop");
    let _ = tokio::signal::ctrl_c().await;
    if let Some(mut s) = sentinels {
        s.stop().await;
    }
    set.shutdown().await;
    ExitCode::SUCCESS
}
