//! The public client: [`Client`], its builder, the generic [`Cmd`] and typed helpers.
//!
//! ```no_run
//! # async fn f() -> Result<(), redcluster::Error> {
//! let client = redcluster::Client::builder(["127.0.0.1:7000"])
//!     .read_from(redcluster::ReadFrom::ReplicaPreferred)
//!     .build()
//!     .await?;
//! client.set("user:1", "alice").await?;
//! let name: Option<String> = client.get("user:1").await?;
//! let n: i64 = client.cmd("INCRBY").arg("visits").arg(5).query().await?;
//! # let _ = (name, n); Ok(()) }
//! ```

mod builder;
mod commands;
mod stats;
mod streams;
#[cfg(feature = "tls")]
pub(crate) mod tls;
mod transaction;
mod url;

use std::sync::Arc;

pub use builder::{ClientBuilder, IntoSeeds};
pub use stats::Stats;
pub use streams::{AutoClaim, PendingSummary, StreamEntry, StreamRead, StreamReadOptions};
#[cfg(feature = "tls")]
pub use tls::TlsConfig;
pub use transaction::{Transaction, TxCmd};

use crate::client_cache::read::Choice;
use crate::error::Error;
use crate::resp::Value;
pub use crate::router::ReadFrom;
use crate::router::Router;
use crate::topology::Topology;
use crate::types::{Args, FromValue, ToArg};

/// A Redis Cluster client. Cheap to clone: clones share one topology, one connection pool
/// and one background refresh task, which ends when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Client {
    router: Arc<Router>,
}

const _: () = {
    const fn assert_send_sync<T: Clone + Send + Sync + 'static>() {}
    assert_send_sync::<Client>();
};

impl Client {
    /// Start configuring a client for the cluster reachable through `seeds`: one
    /// `"host:port"` or a list of them ([`IntoSeeds`]); any one reachable node is enough.
    pub fn builder(seeds: impl IntoSeeds) -> ClientBuilder {
        ClientBuilder::new(seeds)
    }

    /// Start configuring a client for the primary (and replicas) that the Sentinels at
    /// `sentinels` monitor under `master_name` (`"mymaster"`): the client asks them which
    /// node is the primary (trying each in turn), checks that node says it is one, finds its
    /// replicas, and follows `+switch-master` to the new primary at once on a failover.
    /// Sentinel credentials are set apart from the data nodes' with
    /// [`ClientBuilder::sentinel_credentials`].
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), redcluster::Error> {
    /// let client = redcluster::Client::sentinel(["10.0.0.1:26379", "10.0.0.2:26379"], "mymaster")
    ///     .read_from(redcluster::ReadFrom::ReplicaPreferred)
    ///     .build()
    ///     .await?;
    /// # let _ = client; Ok(()) }
    /// ```
    pub fn sentinel(sentinels: impl IntoSeeds, master_name: &str) -> ClientBuilder {
        ClientBuilder::new(Vec::<String>::new()).sentinels(sentinels.into_seeds(), master_name)
    }

    fn from_router(router: Router) -> Client {
        Client {
            router: Arc::new(router),
        }
    }

    /// A command by name; add arguments with [`Cmd::arg`], run it with [`Cmd::query`].
    pub fn cmd(&self, name: &str) -> Cmd<'_> {
        Cmd {
            client: self,
            args: Args::new(name),
            cache: Choice::Auto,
        }
    }

    /// A pipeline of commands sent together (see [`Pipeline`](crate::Pipeline)).
    pub fn pipeline(&self) -> crate::Pipeline<'_> {
        crate::Pipeline::new(self)
    }

    pub(crate) fn router_ref(&self) -> &Router {
        &self.router
    }

    /// Run one command: through the client-side cache when there is one (`choice` from
    /// [`Cmd::cached`]/[`Cmd::uncached`]), else straight to the router.
    async fn execute_as(&self, args: &Args, choice: Choice) -> Result<Value, Error> {
        args.check()?;
        match self.router.cache() {
            Some(cache) => {
                crate::client_cache::read::execute(cache, &self.router, args, choice).await
            }
            None => self.router.execute(args).await,
        }
    }

    /// The client-side cache's figures: hits, misses, invalidations, evictions, entries and
    /// bytes now (all zero without [`ClientBuilder::client_cache`]).
    pub fn cache_stats(&self) -> crate::ClientCacheStats {
        self.router.cache().map(|c| c.stats()).unwrap_or_default()
    }

    /// The current topology snapshot: shards, their primaries, replicas, slot ranges and
    /// config epochs. It does not change under the caller; call again for a newer one.
    pub fn topology(&self) -> Arc<Topology> {
        self.router.topology()
    }

    /// Counters since the client was built: redirects, retries, refreshes, reconnects,
    /// timeouts, and requests sent to each node.
    pub fn stats(&self) -> Stats {
        Stats::collect(&self.router)
    }
}

/// Which nodes [`Cmd::query_per_node`] asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Nodes {
    /// Every shard's primary.
    Primaries,
    /// Every node, replicas included.
    All,
}

/// One command being built: its name, then arguments. Made by [`Client::cmd`].
#[derive(Debug)]
#[must_use = "a command does nothing until .query().await"]
pub struct Cmd<'a> {
    client: &'a Client,
    args: Args,
    cache: Choice,
}

impl Cmd<'_> {
    /// Append one argument.
    pub fn arg<T: ToArg>(mut self, arg: T) -> Self {
        self.args.push(&arg);
        self
    }

    /// Append several arguments.
    pub fn args<I>(mut self, args: I) -> Self
    where
        I: IntoIterator,
        I::Item: ToArg,
    {
        for a in args {
            self.args.push(&a);
        }
        self
    }

    /// Serve this command by `read_from` instead of the client's policy, e.g.
    /// `client.cmd("GET").arg(k).read_from(ReadFrom::Primary)` for a read that must see this
    /// process's latest write. Only read-only commands can go to replicas; writes always go
    /// to the primary whatever this says.
    pub fn read_from(mut self, read_from: ReadFrom) -> Self {
        self.args.set_read_from(read_from);
        self
    }

    /// Serve this read from the client-side cache too, though it is not in the default list
    /// (see [`ClientCache`](crate::ClientCache)); it must be a read-only command on one key
    /// whose reply depends only on the key's value, or `query` fails with
    /// [`ErrorKind::Config`](crate::ErrorKind::Config). Without a cache it changes nothing.
    pub fn cached(mut self) -> Self {
        self.cache = Choice::Cached;
        self
    }

    /// Go to the server even when the client-side cache holds the reply (and store nothing).
    pub fn uncached(mut self) -> Self {
        self.cache = Choice::Uncached;
        self
    }

    /// Send the command and convert its reply.
    ///
    /// # Errors
    /// Any [`Error`]: a server error reply, cross-slot keys, a timeout, a conversion failure.
    pub async fn query<T: FromValue>(self) -> Result<T, Error> {
        let v = self.client.execute_as(&self.args, self.cache).await?;
        T::from_value(v).map_err(|e| self.args.name_in(e))
    }

    /// Send the command to every node of `nodes` and return each one's own reply (converted),
    /// keyed by address, for commands whose answer is per node: `INFO`, `PING`,
    /// `CONFIG GET`, `SLOWLOG GET`, `CLIENT LIST` ... (Commands with a cluster-wide meaning,
    /// such as DBSIZE or KEYS, are already sent everywhere and merged by [`query`](Cmd::query).)
    pub async fn query_per_node<T: FromValue>(
        self,
        nodes: Nodes,
    ) -> Vec<(String, Result<T, Error>)> {
        self.client
            .router
            .execute_per_node(&self.args, nodes == Nodes::All)
            .await
            .into_iter()
            .map(|(addr, r)| (addr, r.and_then(T::from_value)))
            .collect()
    }
}
