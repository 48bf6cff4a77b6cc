//! `redcluster-server --sentinel`: one bundled Sentinel, configured as a real one.
//!
//! ```text
//! redcluster-server sentinel.conf --sentinel            # redis sentinel.conf syntax
//! redcluster-server --sentinel --port 26379 --sentinel-monitor 'mymaster 127.0.0.1 6379 2'
//! ```
//! Flags after the file override it: `--port N`, `--requirepass-file PATH`, and any
//! `--DIRECTIVE 'VALUE ...'` as a config line (`--sentinel-monitor 'mymaster 127.0.0.1
//! 6379 2'` is `sentinel monitor mymaster 127.0.0.1 6379 2`). `down-after-milliseconds`
//! is Redis' 30 s unless configured.

use std::process::ExitCode;

use redcluster::server::sentinel::conf;
use redcluster::server::{Sentinel, SentinelConfig};

pub(crate) const USAGE: &str = "usage: redcluster-server [SENTINEL_CONF] --sentinel [--port N] \
[--requirepass-file PATH] [--sentinel-DIRECTIVE 'ARGS'] [--DIRECTIVE 'ARGS' ...]";

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

/// Build the configuration from the arguments (config file first, flags override).
fn config(argv: &[String]) -> Result<SentinelConfig, String> {
    let mut cfg = SentinelConfig::default();
    cfg.port = 26379;
    let mut i = 0;
    let mut lines: Vec<Vec<String>> = Vec::new();
    while i < argv.len() {
        let a = &argv[i];
        if a == "--sentinel" {
            i += 1;
            continue;
        }
        if a == "-h" || a == "--help" {
            return Err(String::new());
        }
        if let Some(name) = a.strip_prefix("--") {
            let value = argv
                .get(i + 1)
                .ok_or_else(|| format!("{a} needs a value"))?;
            if name == "requirepass-file" {
                let text = std::fs::read_to_string(value)
                    .map_err(|e| format!("cannot read {value}: {e}"))?;
                lines.push(vec!["requirepass".into(), text.trim().to_owned()]);
            } else if let Some(rest) = name.strip_prefix("sentinel-") {
                let mut w = vec!["sentinel".to_owned(), rest.to_owned()];
                w.extend(words(value));
                lines.push(w);
            } else {
                let mut w = vec![name.to_owned()];
                w.extend(words(value));
                lines.push(w);
            }
            i += 2;
        } else {
            let text = std::fs::read_to_string(a).map_err(|e| format!("cannot read {a}: {e}"))?;
            cfg = conf::parse(&text)?;
            if cfg.port == 0 {
                cfg.port = 26379;
            }
            i += 1;
        }
    }
    if let Ok(p) = std::env::var("REDCLUSTER_REQUIREPASS") {
        cfg.requirepass = Some(p);
    }
    for w in lines {
        conf::apply(&mut cfg, &w)?;
    }
    Ok(cfg)
}

/// Run one Sentinel until SHUTDOWN or Ctrl-C.
pub(crate) fn main(argv: Vec<String>) -> ExitCode {
    let cfg = match config(&argv) {
        Ok(c) => c,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("redcluster-server: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if e.is_empty() { 0 } else { 2 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("redcluster-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let monitors = cfg.monitors.clone();
        let sentinel = match Sentinel::start(cfg).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("redcluster-server: cannot start the Sentinel: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("sentinel {} id {}", sentinel.addr(), sentinel.myid());
        for m in monitors {
            println!("  monitoring {} at {} quorum {}", m.name, m.addr, m.quorum);
        }
        tokio::select! {
            _ = sentinel.stopped() => {}
            _ = tokio::signal::ctrl_c() => sentinel.stop(),
        }
        ExitCode::SUCCESS
    })
}
