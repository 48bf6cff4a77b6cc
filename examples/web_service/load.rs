//! A load generator for the service: many tasks issuing GET/PUT over HTTP, checking every
//! answer against what the run itself has seen acknowledged, and timing each request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::db::User;

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `http://host:port`.
    pub base: String,
    /// Concurrent tasks, each with one request in flight.
    pub tasks: usize,
    pub duration: Duration,
    /// Fraction of requests that are PUTs.
    pub write_ratio: f64,
    /// Ids are drawn from `1..=ids`; ids above `seeded` start absent (404).
    pub ids: u64,
    pub seeded: u64,
    /// Zipf exponent for the ids (`None`: uniform).
    pub zipf: Option<f64>,
}

/// What happened.
#[derive(Debug, Default)]
pub struct Report {
    pub gets: u64,
    pub puts: u64,
    pub not_found: u64,
    /// Answers that broke a rule (wrong status, older version than acknowledged, transport
    /// error): the first few, and how many in all.
    pub problems: Vec<String>,
    pub problem_count: u64,
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
}

impl Report {
    /// The `q` quantile (0..=1) of the request latencies.
    pub fn quantile(&mut self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[i]
    }

    /// Requests per second.
    pub fn rate(&self) -> f64 {
        (self.gets + self.puts) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn problem(&mut self, text: String) {
        self.problem_count += 1;
        if self.problems.len() < 20 {
            self.problems.push(text);
        }
    }

    fn merge(&mut self, other: Report) {
        self.gets += other.gets;
        self.puts += other.puts;
        self.not_found += other.not_found;
        self.problem_count += other.problem_count;
        let room = 20usize.saturating_sub(self.problems.len());
        self.problems.extend(other.problems.into_iter().take(room));
        self.latencies.extend(other.latencies);
    }
}

/// Ids by a Zipf law: id k with weight 1/k^s.
struct Ids {
    cdf: Vec<f64>,
}

impl Ids {
    fn new(n: u64, s: Option<f64>) -> Ids {
        let mut acc = 0.0;
        let cdf = (1..=n)
            .map(|k| {
                acc += s.map_or(1.0, |s| 1.0 / (k as f64).powf(s));
                acc
            })
            .collect();
        Ids { cdf }
    }

    fn pick(&self, rng: &mut impl Rng) -> u64 {
        let total = *self.cdf.last().unwrap_or(&1.0);
        let x = rng.gen::<f64>() * total;
        self.cdf.partition_point(|&c| c < x) as u64 + 1
    }
}

/// The body of a PUT.
#[derive(serde::Serialize)]
struct NameBody {
    name: String,
}

/// What every task knows: per id, the newest version acknowledged by a PUT, and whether a
/// PUT was ever sent (an absent id may exist from then on).
struct Seen {
    acked: Vec<AtomicU64>,
    put_sent: Vec<AtomicBool>,
}

/// Run `plan` with `http`; returns when its duration has passed.
pub async fn run(plan: &Plan, http: &reqwest::Client) -> Report {
    let ids = Arc::new(Ids::new(plan.ids, plan.zipf));
    let seen = Arc::new(Seen {
        acked: (0..=plan.ids).map(|_| AtomicU64::new(0)).collect(),
        put_sent: (0..=plan.ids).map(|_| AtomicBool::new(false)).collect(),
    });
    let started = Instant::now();
    let until = started + plan.duration;
    let mut tasks = Vec::new();
    for t in 0..plan.tasks {
        let (plan, http, ids, seen) = (plan.clone(), http.clone(), ids.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            let mut report = Report::default();
            let mut n = 0u64;
            while Instant::now() < until {
                let (id, write) = {
                    let mut rng = rand::thread_rng();
                    (ids.pick(&mut rng), rng.gen::<f64>() < plan.write_ratio)
                };
                n += 1;
                let floor = seen.acked[id as usize].load(Ordering::SeqCst);
                let url = format!("{}/users/{id}", plan.base);
                let sent = Instant::now();
                if write {
                    seen.put_sent[id as usize].store(true, Ordering::SeqCst);
                    let body = NameBody {
                        name: format!("task {t} write {n}"),
                    };
                    let r = http.put(&url).json(&body).send().await;
                    report.latencies.push(sent.elapsed());
                    report.puts += 1;
                    match r {
                        Ok(r) if r.status() == 200 => match r.json::<User>().await {
                            Ok(u) if u.id == id && u.version > floor => {
                                seen.acked[id as usize].fetch_max(u.version, Ordering::SeqCst);
                            }
                            Ok(u) => report.problem(format!(
                                "PUT {id}: version {} after {floor} was acknowledged",
                                u.version
                            )),
                            Err(e) => report.problem(format!("PUT {id}: bad body: {e}")),
                        },
                        Ok(r) => report.problem(format!("PUT {id}: status {}", r.status())),
                        Err(e) => report.problem(format!("PUT {id}: {e}")),
                    }
                } else {
                    let r = http.get(&url).send().await;
                    report.gets += 1;
                    let exists = id <= plan.seeded || floor > 0;
                    let may_exist = exists || seen.put_sent[id as usize].load(Ordering::SeqCst);
                    match r {
                        Ok(r) if r.status() == 200 => {
                            let body = r.json::<User>().await;
                            report.latencies.push(sent.elapsed());
                            match body {
                                Ok(u) if u.id == id && u.version >= floor && may_exist => {}
                                Ok(u) => report.problem(format!(
                                    "GET {id}: version {} but {floor} was acknowledged \
                                     (exists: {may_exist})",
                                    u.version
                                )),
                                Err(e) => report.problem(format!("GET {id}: bad body: {e}")),
                            }
                        }
                        Ok(r) if r.status() == 404 => {
                            report.latencies.push(sent.elapsed());
                            report.not_found += 1;
                            if exists {
                                report.problem(format!("GET {id}: 404 for an existing user"));
                            }
                        }
                        Ok(r) => report.problem(format!("GET {id}: status {}", r.status())),
                        Err(e) => report.problem(format!("GET {id}: {e}")),
                    }
                }
            }
            report
        }));
    }
    let mut report = Report::default();
    for t in tasks {
        match t.await {
            Ok(r) => report.merge(r),
            Err(e) => report.problem(format!("load task failed: {e}")),
        }
    }
    report.elapsed = started.elapsed();
    report
}
