//! A consumer group surviving a failover: workers process jobs from one stream with
//! XREADGROUP (blocking) and XACK while the stream's primary hands over to its replica
//! (`CLUSTER FAILOVER`, graceful), on the bundled 3+3 cluster.
//!
//! ```sh
//! cargo run --release --example stream_worker -- --jobs 3000 --workers 3
//! cargo run --release --example stream_worker -- --jobs 3000 --kill   # primary killed instead
//! ```
//!
//! Each worker first re-reads its own pending entries (`0`: what it was given but had not
//! acknowledged when its connection broke), then new ones (`>`); it acknowledges each job
//! after processing it. Errors during the failover are retried after a short pause. At the
//! end it prints: jobs produced, jobs processed, jobs never processed (lost), jobs processed
//! more than once (redelivered), and XACKs that acknowledged an already acknowledged job
//! (double acknowledgements; XACK answers 1 only the first time), with the failover time
//! and the time to resume: the longest gap between two successful XACKs.
//!
//! With `--kill` the primary is killed (SIGKILL-like) and its replica elected after the
//! node timeout: replication is asynchronous, so entries the dead primary acknowledged but
//! had not yet streamed may be lost (as with Redis); the graceful default loses none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redcluster::server::{FailoverMode, TestCluster};
use redcluster::{Client, StreamReadOptions};

const KEY: &str = "{jobs}:stream";
const GROUP: &str = "workers";

#[derive(Default)]
struct Tally {
    /// Job number -> times processed.
    processed: HashMap<u64, u32>,
    /// XACKs that answered 1.
    acked_ones: HashMap<String, u32>,
    errors: u64,
    /// When the last XACK succeeded, and the longest gap between two (time to resume).
    last_ack: Option<Instant>,
    longest_gap: Duration,
}

impl Tally {
    fn acked(&mut self, id: &str) {
        *self.acked_ones.entry(id.to_string()).or_default() += 1;
        let now = Instant::now();
        if let Some(last) = self.last_ack {
            self.longest_gap = self.longest_gap.max(now - last);
        }
        self.last_ack = Some(now);
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn worker(client: Client, name: String, tally: Arc<Mutex<Tally>>, total: u64) {
    let mut history = true;
    loop {
        if tally.lock().unwrap().processed.len() as u64 >= total {
            return;
        }
        let id = if history { "0" } else { ">" };
        let opts = StreamReadOptions::default()
            .count(20)
            .block(Duration::from_millis(200));
        let reads = match client.xreadgroup(GROUP, &name, &[(KEY, id)], opts).await {
            Ok(r) => r,
            Err(_) => {
                tally.lock().unwrap().errors += 1;
                // After an error the next read starts with this worker's own history.
                history = true;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let entries: Vec<_> = reads.into_iter().flat_map(|r| r.entries).collect();
        if history && entries.is_empty() {
            history = false;
            continue;
        }
        for e in entries {
            let Some(n) = e
                .get("n")
                .and_then(|b| std::str::from_utf8(b).ok()?.parse::<u64>().ok())
            else {
                continue; // deleted while pending
            };
            // "Process" the job, then acknowledge it.
            *tally.lock().unwrap().processed.entry(n).or_default() += 1;
            match client.xack(KEY, GROUP, &[e.id.as_str()]).await {
                Ok(1) => tally.lock().unwrap().acked(&e.id),
                Ok(_) => {}
                Err(_) => {
                    tally.lock().unwrap().errors += 1;
                    history = true;
                }
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let jobs = arg("--jobs", 3000);
    let workers = arg("--workers", 3);
    let kill = std::env::args().any(|a| a == "--kill");
    let cluster = TestCluster::builder()
        .primaries(3)
        .replicas_per_primary(1)
        .node_timeout(Duration::from_secs(1))
        .start()
        .await
        .expect("cluster");
    let seeds: Vec<String> = cluster.seeds().iter().map(|a| a.to_string()).collect();
    let client = Client::builder(seeds)
        .request_timeout(Duration::from_secs(5))
        .build()
        .await
        .expect("client");
    client
        .cmd("XGROUP")
        .arg("CREATE")
        .arg(KEY)
        .arg(GROUP)
        .arg("$")
        .arg("MKSTREAM")
        .query::<()>()
        .await
        .expect("group");
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut tasks = Vec::new();
    for w in 0..workers {
        tasks.push(tokio::spawn(worker(
            client.clone(),
            format!("worker-{w}"),
            tally.clone(),
            jobs,
        )));
    }
    let started = Instant::now();
    let producer = {
        let client = client.clone();
        let tally = tally.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while n < jobs {
                match client.xadd(KEY, &[("n", n.to_string())]).await {
                    Ok(_) => n += 1,
                    Err(_) => {
                        tally.lock().unwrap().errors += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        })
    };
    // Fail the stream's primary over once a third of the jobs are done.
    while (tally.lock().unwrap().processed.len() as u64) < jobs / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let slot = redcluster::slot::key_slot(KEY.as_bytes());
    let primary = cluster.primary_index_of_slot(slot).expect("owner");
    let replica = cluster.replica_indexes_of(primary)[0];
    let t = Instant::now();
    if kill {
        cluster.kill_node(primary).await;
        cluster
            .wait_stable(Duration::from_secs(30))
            .await
            .expect("the replica takes over");
    } else {
        cluster
            .failover(replica, FailoverMode::Default)
            .await
            .expect("failover");
    }
    let failover_ms = t.elapsed().as_millis();
    let now_primary = cluster.primary_index_of_slot(slot).expect("owner");
    producer.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (tally.lock().unwrap().processed.len() as u64) < jobs && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in &tasks {
        t.abort();
    }
    let elapsed = started.elapsed();
    let pending = client.xpending(KEY, GROUP).await.expect("xpending");
    let tally = tally.lock().unwrap();
    let lost = (0..jobs)
        .filter(|n| !tally.processed.contains_key(n))
        .count();
    let redelivered = tally.processed.values().filter(|c| **c > 1).count();
    let double_acks = tally.acked_ones.values().filter(|c| **c > 1).count();
    let how = if kill { "killed" } else { "CLUSTER FAILOVER" };
    println!("stream primary           node {primary} -> node {now_primary} ({how})");
    println!("jobs produced            {jobs}");
    println!("jobs processed           {}", tally.processed.len());
    println!("entries acknowledged     {}", tally.acked_ones.len());
    println!("lost (never processed)   {lost}");
    println!("processed more than once {redelivered}");
    println!("double acknowledgements  {double_acks}");
    println!("still pending            {}", pending.count);
    println!("errors retried           {}", tally.errors);
    println!("failover                 {failover_ms} ms until the replica was primary");
    println!(
        "time to resume           {} ms (longest gap between two XACKs)",
        tally.longest_gap.as_millis()
    );
    println!("whole run                {elapsed:?}");
    if lost > 0 || double_acks > 0 {
        std::process::exit(1);
    }
}
