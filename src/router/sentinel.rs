//! Discovery through Sentinel, as the Sentinel client guidelines describe.
//!
//! A refresh asks the Sentinels, in order, `SENTINEL get-master-addr-by-name NAME`; the
//! first that names a primary moves to the front of the list (so the next refresh asks it
//! first). The named node must then say itself `role:master` (`INFO replication`), or the
//! refresh fails and the current topology stays (a failover is half done: the next refresh,
//! at most [`MIN_REFRESH_GAP`](super::refresh::MIN_REFRESH_GAP) later when requests keep
//! failing, asks again). Replicas are the ones the primary lists as online and caught up
//! (as in [`standalone`](super::standalone)), minus those the Sentinel flags `s_down`,
//! `o_down` or `disconnected`.
//!
//! A background task keeps a subscription to `+switch-master` on one Sentinel (the next on
//! failure) and refreshes at once when the Sentinels switch this primary, on top of the
//! periodic refresh. Sentinel connections use their own credentials
//! (`ClientBuilder::sentinel_credentials`) and the builder's TLS and address map.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::standalone::{self, Role};
use super::Inner;
use crate::connection::{ConnectOptions, Connection};
use crate::error::{Error, ErrorKind};
use crate::pool::Pool;
use crate::resp::Value;
use crate::topology::Topology;

/// The Sentinels of one monitored primary.
pub(crate) struct Sentinels {
    /// The name they monitor the primary under (`mymaster`).
    name: String,
    /// Addresses, the one that answered last first.
    order: Mutex<Vec<String>>,
    /// Connections to the Sentinels (their own credentials).
    pool: Arc<Pool>,
    opts: ConnectOptions,
}

impl std::fmt::Debug for Sentinels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sentinels")
            .field("name", &self.name)
            .field("order", &self.order)
            .finish()
    }
}

impl Sentinels {
    /// Sentinels at `addrs` watching `name`, reached with `opts`.
    pub(crate) fn new(addrs: Vec<String>, name: &str, opts: ConnectOptions) -> Sentinels {
        Sentinels {
            name: name.to_string(),
            order: Mutex::new(addrs),
            pool: Arc::new(Pool::new(opts.clone(), 1)),
            opts,
        }
    }

    fn order(&self) -> Vec<String> {
        self.order.lock().map(|o| o.clone()).unwrap_or_default()
    }

    fn to_front(&self, addr: &str) {
        if let Ok(mut o) = self.order.lock() {
            if let Some(i) = o.iter().position(|a| a == addr) {
                let a = o.remove(i);
                o.insert(0, a);
            }
        }
    }

    async fn request(&self, addr: &str, args: &[&str], timeout: Duration) -> Result<Value, Error> {
        let ask = async {
            let entry = self.pool.entry(addr);
            let conn = self.pool.conn(&entry, false).await?;
            conn.request(args).await
        };
        match tokio::time::timeout(timeout, ask).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("Sentinel {addr} did not answer in time"),
            )),
        }
    }

    /// (primary address, the Sentinel that named it).
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming each Sentinel's failure when none named a primary.
    async fn ask_primary(&self, timeout: Duration) -> Result<(String, String), Error> {
        let mut failures = Vec::new();
        for addr in self.order() {
            let args = ["SENTINEL", "get-master-addr-by-name", &self.name];
            match self.request(&addr, &args, timeout).await {
                Ok(Value::Array(parts)) if parts.len() == 2 => {
                    let text = |v: &Value| {
                        v.as_bytes()
                            .map(|b| String::from_utf8_lossy(b).into_owned())
                    };
                    match (
                        text(&parts[0]),
                        text(&parts[1]).and_then(|p| p.parse::<u16>().ok()),
                    ) {
                        (Some(ip), Some(port)) => {
                            self.to_front(&addr);
                            return Ok((format!("{ip}:{port}"), addr));
                        }
                        _ => failures.push(format!("{addr}: unreadable address")),
                    }
                }
                Ok(Value::Null | Value::NullArray) => {
                    failures.push(format!("{addr}: does not monitor {:?}", self.name))
                }
                Ok(Value::Error(line)) => {
                    failures.push(format!("{addr}: {}", String::from_utf8_lossy(&line)))
                }
                Ok(_) => failures.push(format!("{addr}: unexpected reply")),
                Err(e) => failures.push(format!("{addr}: {e}")),
            }
        }
        Err(Error::new(
            ErrorKind::Config,
            format!(
                "no Sentinel named the primary of {:?} ({})",
                self.name,
                failures.join("; ")
            ),
        ))
    }

    /// Replicas `sentinel` flags as down or disconnected (`ip:port`); empty when it cannot
    /// say.
    async fn replicas_down(&self, sentinel: &str, timeout: Duration) -> Vec<String> {
        let args = ["SENTINEL", "replicas", &self.name];
        let Ok(Value::Array(list)) = self.request(sentinel, &args, timeout).await else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|r| {
                let fields = match r {
                    Value::Array(f) => f
                        .chunks(2)
                        .filter_map(|c| Some((c.first()?.as_bytes()?, c.get(1)?.as_bytes()?)))
                        .collect::<Vec<_>>(),
                    Value::Map(m) => m
                        .iter()
                        .filter_map(|(k, v)| Some((k.as_bytes()?, v.as_bytes()?)))
                        .collect(),
                    _ => return None,
                };
                let get = |k: &str| {
                    fields
                        .iter()
                        .find(|(f, _)| &f[..] == k.as_bytes())
                        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                };
                let flags = get("flags")?;
                let down = flags
                    .split(',')
                    .any(|f| matches!(f, "s_down" | "o_down" | "disconnected"));
                let addr = format!("{}:{}", get("ip")?, get("port")?);
                down.then_some(addr)
            })
            .collect()
    }
}

/// The topology the Sentinels describe.
///
/// # Errors
/// No Sentinel named a primary ([`ErrorKind::Config`]); the named node did not answer, or
/// says it is a replica ([`ErrorKind::ClusterDown`]: a failover is under way).
pub(crate) async fn discover(inner: &Arc<Inner>, s: &Sentinels) -> Result<Topology, Error> {
    let timeout = inner.config.request_timeout;
    let (primary, sentinel) = s.ask_primary(timeout).await?;
    let role = standalone::fetch_role(inner, &primary).await.map_err(|e| {
        Error::new(
            ErrorKind::ClusterDown,
            format!("{primary}, the primary Sentinel {sentinel} names, did not answer: {e}"),
        )
    })?;
    if !role.is_primary() {
        return Err(Error::new(
            ErrorKind::ClusterDown,
            format!("{primary}, the primary Sentinel {sentinel} names, is not a primary (yet)"),
        ));
    }
    let mut views: Vec<(String, Role)> = vec![(primary.clone(), role)];
    standalone::add_listed_replicas(inner, &mut views).await;
    let down = s.replicas_down(&sentinel, timeout).await;
    views.retain(|(a, _)| !down.contains(a));
    Ok(standalone::choose(&views, Some(&primary))
        .unwrap_or_else(|| standalone::one_shard(&primary, Vec::new())))
}

/// Keep a `+switch-master` subscription on one of the Sentinels for as long as the client
/// lives, refreshing at once when they switch this primary.
pub(crate) fn watch(inner: Weak<Inner>, s: Arc<Sentinels>) {
    tokio::spawn(async move {
        let mut failures: u32 = 0;
        loop {
            for addr in s.order() {
                if gone(&inner) {
                    return;
                }
                if let Ok(conn) = Connection::connect(&addr, &s.opts).await {
                    failures = 0;
                    if !follow(&inner, &s.name, &conn).await {
                        return;
                    }
                }
                failures += 1;
                let wait = super::decide::backoff(
                    failures.min(8),
                    Duration::from_millis(50),
                    Duration::from_secs(2),
                );
                tokio::time::sleep(wait).await;
            }
        }
    });
}

fn gone(inner: &Weak<Inner>) -> bool {
    inner.upgrade().map_or(true, |i| {
        i.closing.load(std::sync::atomic::Ordering::Relaxed)
    })
}

/// Subscribe on `conn` and act on its messages until it fails (`true`: try another Sentinel)
/// or the client is gone (`false`).
async fn follow(inner: &Weak<Inner>, name: &str, conn: &Connection) -> bool {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Value, Error>>(64);
    conn.make_subscriber(Box::new(move |frame| {
        let _ = tx.try_send(frame);
    }));
    if conn
        .send_no_reply(|b| crate::resp::encode_command(b, ["SUBSCRIBE", "+switch-master"]))
        .is_err()
    {
        return true;
    }
    loop {
        let frame = tokio::select! {
            f = rx.recv() => f,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if gone(inner) {
                    return false;
                }
                if conn.is_closed() {
                    return true;
                }
                continue;
            }
        };
        match frame {
            Some(Ok(v)) => {
                if switched(&v, name) {
                    let Some(inner) = inner.upgrade() else {
                        return false;
                    };
                    tracing::info!(master = name, "Sentinel switched the primary; refreshing");
                    inner.trigger_refresh();
                }
            }
            Some(Err(_)) | None => return true,
        }
    }
}

/// True for a `+switch-master` message about `name` (`message`, channel, `NAME oldip oldport
/// newip newport`).
fn switched(v: &Value, name: &str) -> bool {
    let parts = match v {
        Value::Array(p) | Value::Push(p) => p,
        _ => return false,
    };
    let (Some(kind), Some(payload)) = (
        parts.first().and_then(Value::as_bytes),
        parts.get(2).and_then(Value::as_bytes),
    ) else {
        return false;
    };
    &kind[..] == b"message" && payload.split(|&b| b == b' ').next() == Some(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: &str, payload: &str) -> Value {
        Value::Array(vec![
            Value::BulkString(kind.to_string().into()),
            Value::BulkString("+switch-master".into()),
            Value::BulkString(payload.to_string().into()),
        ])
    }

    #[test]
    fn only_this_masters_switch_counts() {
        assert!(switched(
            &msg("message", "mymaster 127.0.0.1 1 127.0.0.1 2"),
            "mymaster"
        ));
        assert!(!switched(
            &msg("message", "other 127.0.0.1 1 127.0.0.1 2"),
            "mymaster"
        ));
        assert!(!switched(&msg("message", "mymasterx 1 2 3 4"), "mymaster"));
        assert!(!switched(&msg("subscribe", "mymaster"), "mymaster"));
        assert!(!switched(&Value::Integer(1), "mymaster"));
    }
}
