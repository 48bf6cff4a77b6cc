//! A web backend over redcluster: axum, SQLite as the source of truth, a JSON cache with a
//! 30-minute TTL read from replicas first, and Prometheus metrics.
//!
//! ```sh
//! cargo run --release --example web_service -- --listen 127.0.0.1:8080
//! curl -i 127.0.0.1:8080/users/42            # x-cache: miss, then hit
//! curl -i -X PUT -H 'content-type: application/json' -d '{"name":"ada"}' 127.0.0.1:8080/users/42
//! curl 127.0.0.1:8080/metrics
//! ```
//!
//! Without `--url`/`--seeds` it starts the bundled cluster (3 primaries + 3 replicas on
//! 127.0.0.1). Options:
//! - `--url redis://host:port[,host:port...]` or `--seeds host:port,host:port`: a cluster
//!   of your own
//! - `--users N` (10000): rows seeded into SQLite
//! - `--deadline-ms MS` (250): every request's deadline for the cluster, after which GETs
//!   are served from SQLite (counted as `webservice_fallbacks_total`)
//! - `--no-cache`: serve from SQLite only; `--no-read-your-writes`
//! - `--bench SECS` with `--clients N` (64), `--writes FRACTION` (0.1), `--zipf S` (0.99):
//!   load the service over HTTP from N tasks, print requests/s and latency quantiles, exit
//! - `--kill-primary-after SECS` (bundled cluster, with `--bench`): kill a primary then

mod app;
mod db;
mod load;
mod metrics;

use std::time::Duration;

use redcluster::{Client, ReadFrom};

struct Args {
    listen: String,
    url: Option<String>,
    seeds: Option<String>,
    users: u64,
    settings: app::Settings,
    bench: Option<Duration>,
    clients: usize,
    writes: f64,
    zipf: f64,
    kill_after: Option<Duration>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        listen: "127.0.0.1:8080".into(),
        url: None,
        seeds: None,
        users: 10_000,
        settings: app::Settings::default(),
        bench: None,
        clients: 64,
        writes: 0.1,
        zipf: 0.99,
        kill_after: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--listen" => a.listen = value()?,
            "--url" => a.url = Some(value()?),
            "--seeds" => a.seeds = Some(value()?),
            "--users" => a.users = num(value()?)? as u64,
            "--deadline-ms" => a.settings.deadline = Duration::from_millis(num(value()?)? as u64),
            "--no-cache" => a.settings.cache = false,
            "--no-read-your-writes" => a.settings.read_your_writes = false,
            "--bench" => a.bench = Some(Duration::from_secs_f64(num(value()?)?)),
            "--clients" => a.clients = num(value()?)? as usize,
            "--writes" => a.writes = num(value()?)?,
            "--zipf" => a.zipf = num(value()?)?,
            "--kill-primary-after" => a.kill_after = Some(Duration::from_secs_f64(num(value()?)?)),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = parse_args()?;
    let (builder, cluster) = match (&args.url, &args.seeds) {
        (Some(url), _) => (Client::from_url(url)?, None),
        (None, Some(seeds)) => {
            let seeds: Vec<String> = seeds.split(',').map(str::to_string).collect();
            (Client::builder(seeds), None)
        }
        (None, None) => {
            let cluster = redcluster::server::TestCluster::builder()
                .primaries(3)
                .replicas_per_primary(1)
                .start()
                .await?;
            println!("bundled cluster: {:?}", cluster.seeds());
            (Client::builder(cluster.seeds()), Some(cluster))
        }
    };
    let client = builder
        .read_from(ReadFrom::ReplicaPreferred)
        .request_timeout(Duration::from_secs(2))
        .build()
        .await?;
    let db = db::Db::open(args.users)?;
    let service = app::App::new(client, db, args.settings.clone());
    let (addr, server) = app::start(&args.listen, service.clone()).await?;
    println!(
        "listening on http://{addr} ({} users, cache {}, deadline {:?})",
        args.users,
        if args.settings.cache { "on" } else { "off" },
        args.settings.deadline
    );
    let Some(duration) = args.bench else {
        server.await??;
        return Ok(());
    };
    let plan = load::Plan {
        base: format!("http://{addr}"),
        tasks: args.clients,
        duration,
        write_ratio: args.writes,
        ids: args.users,
        seeded: args.users,
        zipf: Some(args.zipf),
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let kill = async {
        if let (Some(after), Some(c)) = (args.kill_after, &cluster) {
            tokio::time::sleep(after).await;
            let i = c.kill_primary_of("users::1").await;
            println!("killed primary node {i} (owner of users::1)");
        }
    };
    let (mut report, ()) = tokio::join!(load::run(&plan, &http), kill);
    println!(
        "{} clients, {:?}, {:.0}% PUT, zipf {}: {:.0} requests/s, p50 {:?}, p99 {:?}, \
         {} GET ({} 404), {} PUT, {} problems",
        args.clients,
        duration,
        args.writes * 100.0,
        args.zipf,
        report.rate(),
        report.quantile(0.5),
        report.quantile(0.99),
        report.gets,
        report.not_found,
        report.puts,
        report.problem_count
    );
    for p in &report.problems {
        println!("  problem: {p}");
    }
    let c = service.cache.stats();
    println!(
        "cache: {} hits, {} misses, {} loads; SQLite reads {}; fallbacks {}; stale repairs {}",
        c.hits,
        c.misses,
        c.loads,
        service.db.reads(),
        service
            .metrics
            .fallbacks
            .load(std::sync::atomic::Ordering::Relaxed),
        service
            .metrics
            .stale_repairs
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    server.abort();
    if let Some(c) = cluster {
        c.shutdown().await;
    }
    Ok(())
}
