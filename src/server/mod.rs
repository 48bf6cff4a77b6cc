//! The bundled in-process Redis Cluster.
//!
//! [`TestCluster`] starts several nodes in this process, each with its own TCP listener on
//! 127.0.0.1, keyspace, slot ownership, role and view of the cluster. They speak RESP2 and
//! RESP3 like Redis 7.0, so `redis-cli -c`, `redis-cli --cluster`, `redis-benchmark
//! --cluster` and other languages' cluster clients use them unchanged.
//!
//! Inside a node (see `ARCHITECTURE.md`): `conn` reads pipelined requests and writes replies
//! in batches; `dispatch` applies Redis' checks in Redis' order (lookup, arity, auth,
//! transaction queuing, cluster routing) and runs the command on the keyspace (`db`) or on the
//! server (`cmd_*`, `cluster::commands`); `cluster::bus` gossips node state between nodes
//! in-process; `replication` ships snapshot + buffered writes + stream to replicas over real
//! TCP.
//!
//! Failure detection and failover follow Redis 7 (`cluster-node-timeout`, PFAIL/FAIL,
//! replica elections ranked by replication offset, `CLUSTER FAILOVER [FORCE|TAKEOVER]`,
//! replica migration), and [`TestCluster`] injects faults by node index:
//!
//! ```no_run
//! # async fn faults() -> std::io::Result<()> {
//! use std::time::Duration;
//! use redcluster::server::{FailoverMode, TestCluster};
//! let cluster = TestCluster::builder().replicas_per_primary(1).start().await?;
//! let dead = cluster.kill_primary_of("user:1").await; // its replica takes over
//! cluster.wait_stable(Duration::from_secs(10)).await?;
//! cluster.restart_node(dead, true).await?; // back as a replica, resynced
//! cluster.pause_node(0); // requests to node 0 hang until resume_node(0)
//! cluster.resume_node(0);
//! let replica = cluster.replica_indexes_of(1)[0];
//! cluster.failover(replica, FailoverMode::Default).await?; // no acknowledged write lost
//! # Ok(()) }
//! ```
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use redcluster::server::TestCluster;
//! let cluster = TestCluster::builder().primaries(3).replicas_per_primary(1).start().await?;
//! for node in cluster.nodes() {
//!     println!("{} {} {:?}", node.addr, node.id, node.role);
//! }
//! # Ok(()) }
//! ```

mod acl;
mod args;
mod auth;
mod blocking;
mod call;
mod clients;
mod cluster;
mod cmd_command;
mod cmd_config;
mod cmd_docs;
mod cmd_fault;
mod cmd_info;
mod cmd_lolwut;
mod cmd_misc;
mod cmd_monitor;
mod cmd_multi;
mod cmd_server;
mod conn;
mod databases;
pub(crate) mod db;
mod dispatch;
mod fault;
mod lifecycle;
mod limits;
mod migrate;
mod monitor;
mod node;

mod pubsub;
mod registry;
mod replication;
mod scripting;
pub mod sentinel;
mod session;
mod slowlog;
mod stats;
mod stream;
mod test_cluster;
mod test_cluster_faults;
mod test_replica_set;
#[cfg(feature = "tls")]
mod tls;
mod tracking;
mod waiters;

pub use cluster::failover::FailoverMode;
pub use sentinel::{Monitor, Sentinel, SentinelConfig, TestSentinels, TestSentinelsBuilder};
pub use test_cluster::{NodeInfo, Role, TestCluster, TestClusterBuilder, DEFAULT_NODE_TIMEOUT};
pub use test_replica_set::{TestReplicaSet, TestReplicaSetBuilder};
#[cfg(feature = "tls")]
pub use tls::{ServerTls, TlsAuthClients};

/// The Redis version this server answers as (HELLO, INFO).
pub(crate) const REDIS_VERSION: &str = "7.0.15";

/// Every command this server implements: name, and who runs it. Registering a command is
/// one line here; its spec (arity, flags, keys) comes from the generated `command` table
/// and `registry` checks arity before the handler runs.
///
/// `"name"` registers a command (and, for a container such as OBJECT or CONFIG, every
/// subcommand not registered on its own); `"name|sub"` registers one subcommand.
/// `Db(f)`: `f(&mut Db, args, ctx) -> Value`, a pure keyspace command (replicated from what
/// it propagates). `Server(f)`: `f(&mut Call) -> Outcome`, where `call::Call` holds the
/// connection, the spec, the arguments, the locked node state and the node's shared parts.
static COMMANDS: &[(&str, registry::Handler)] = {
    use db::{
        bitfield, bits, geo, hash, hll, keys, lcs, list, set, sort, strings, xclaim, xcmd, xgroup,
        xread, zrange, zset, zstore,
    };
    use registry::Handler::{Db, Server};
    &[
        ("get", Db(strings::get)),
        ("set", Db(strings::set)),
        ("mget", Db(strings::mget)),
        ("mset", Db(strings::mset)),
        ("msetnx", Db(strings::msetnx)),
        ("incr", Db(strings::incr)),
        ("decr", Db(strings::decr)),
        ("incrby", Db(strings::incrby)),
        ("decrby", Db(strings::decrby)),
        ("incrbyfloat", Db(strings::incrbyfloat)),
        ("append", Db(strings::append)),
        ("strlen", Db(strings::strlen)),
        ("getdel", Db(strings::getdel)),
        ("getex", Db(strings::getex)),
        ("setnx", Db(strings::setnx)),
        ("setex", Db(strings::setex)),
        ("psetex", Db(strings::psetex)),
        ("getrange", Db(strings::getrange)),
        ("substr", Db(strings::getrange)),
        ("setrange", Db(strings::setrange)),
        ("getset", Db(strings::getset)),
        ("setbit", Db(bits::setbit)),
        ("getbit", Db(bits::getbit)),
        ("bitcount", Db(bits::bitcount)),
        ("bitpos", Db(bits::bitpos)),
        ("del", Db(keys::del)),
        ("unlink", Db(keys::del)),
        ("exists", Db(keys::exists)),
        ("touch", Db(keys::touch)),
        ("expire", Db(keys::expire)),
        ("pexpire", Db(keys::pexpire)),
        ("expireat", Db(keys::expireat)),
        ("pexpireat", Db(keys::pexpireat)),
        ("expiretime", Db(keys::expiretime)),
        ("pexpiretime", Db(keys::pexpiretime)),
        ("ttl", Db(keys::ttl)),
        ("pttl", Db(keys::pttl)),
        ("persist", Db(keys::persist)),
        ("type", Db(keys::type_cmd)),
        ("rename", Db(keys::rename)),
        ("renamenx", Db(keys::renamenx)),
        ("copy", Db(keys::copy)),
        ("keys", Db(keys::keys)),
        ("scan", Db(keys::scan)),
        ("dbsize", Db(keys::dbsize)),
        ("flushall", Db(keys::flushall)),
        ("flushdb", Db(keys::flushall)),
        ("randomkey", Db(keys::randomkey)),
        ("object", Db(keys::object)),
        ("dump", Db(keys::dump)),
        ("restore", Db(keys::restore)),
        ("hset", Db(hash::hset)),
        ("hmset", Db(hash::hmset)),
        ("hsetnx", Db(hash::hsetnx)),
        ("hget", Db(hash::hget)),
        ("hmget", Db(hash::hmget)),
        ("hgetall", Db(hash::hgetall)),
        ("hdel", Db(hash::hdel)),
        ("hexists", Db(hash::hexists)),
        ("hlen", Db(hash::hlen)),
        ("hkeys", Db(hash::hkeys)),
        ("hvals", Db(hash::hvals)),
        ("hincrby", Db(hash::hincrby)),
        ("hincrbyfloat", Db(hash::hincrbyfloat)),
        ("hstrlen", Db(hash::hstrlen)),
        ("hscan", Db(hash::hscan)),
        ("hrandfield", Db(hash::hrandfield)),
        ("lpush", Db(list::lpush)),
        ("rpush", Db(list::rpush)),
        ("lpushx", Db(list::lpushx)),
        ("rpushx", Db(list::rpushx)),
        ("lpop", Db(list::lpop)),
        ("rpop", Db(list::rpop)),
        ("llen", Db(list::llen)),
        ("lrange", Db(list::lrange)),
        ("lindex", Db(list::lindex)),
        ("lset", Db(list::lset)),
        ("lrem", Db(list::lrem)),
        ("ltrim", Db(list::ltrim)),
        ("linsert", Db(list::linsert)),
        ("lpos", Db(list::lpos)),
        ("lmove", Db(list::lmove)),
        ("rpoplpush", Db(list::rpoplpush)),
        ("lmpop", Db(list::lmpop)),
        ("sadd", Db(set::sadd)),
        ("srem", Db(set::srem)),
        ("smembers", Db(set::smembers)),
        ("sismember", Db(set::sismember)),
        ("smismember", Db(set::smismember)),
        ("scard", Db(set::scard)),
        ("spop", Db(set::spop)),
        ("srandmember", Db(set::srandmember)),
        ("sinter", Db(set::sinter)),
        ("sintercard", Db(set::sintercard)),
        ("sunion", Db(set::sunion)),
        ("sdiff", Db(set::sdiff)),
        ("sinterstore", Db(set::sinterstore)),
        ("sunionstore", Db(set::sunionstore)),
        ("sdiffstore", Db(set::sdiffstore)),
        ("smove", Db(set::smove)),
        ("sscan", Db(set::sscan)),
        ("zadd", Db(zset::zadd)),
        ("zrem", Db(zset::zrem)),
        ("zscore", Db(zset::zscore)),
        ("zmscore", Db(zset::zmscore)),
        ("zincrby", Db(zset::zincrby)),
        ("zcard", Db(zset::zcard)),
        ("zcount", Db(zrange::zcount)),
        ("zlexcount", Db(zrange::zlexcount)),
        ("zrange", Db(zrange::zrange)),
        ("zrangebyscore", Db(zrange::zrangebyscore)),
        ("zrevrangebyscore", Db(zrange::zrevrangebyscore)),
        ("zrevrange", Db(zrange::zrevrange)),
        ("zrangebylex", Db(zrange::zrangebylex)),
        ("zrevrangebylex", Db(zrange::zrevrangebylex)),
        ("zrank", Db(zset::zrank)),
        ("zrevrank", Db(zset::zrevrank)),
        ("zpopmin", Db(zset::zpopmin)),
        ("zpopmax", Db(zset::zpopmax)),
        ("zremrangebyscore", Db(zrange::zremrangebyscore)),
        ("zremrangebyrank", Db(zrange::zremrangebyrank)),
        ("zremrangebylex", Db(zrange::zremrangebylex)),
        ("zunionstore", Db(zstore::zunionstore)),
        ("zinterstore", Db(zstore::zinterstore)),
        ("zdiffstore", Db(zstore::zdiffstore)),
        ("zunion", Db(zstore::zunion)),
        ("zinter", Db(zstore::zinter)),
        ("zdiff", Db(zstore::zdiff)),
        ("zintercard", Db(zstore::zintercard)),
        ("zrangestore", Db(zrange::zrangestore)),
        ("zmpop", Db(zset::zmpop)),
        ("zrandmember", Db(zrange::zrandmember)),
        ("zscan", Db(zrange::zscan)),
        ("bitfield", Db(bitfield::bitfield)),
        ("bitfield_ro", Db(bitfield::bitfield_ro)),
        ("bitop", Db(bitfield::bitop)),
        ("lcs", Db(lcs::lcs)),
        ("sort", Db(sort::sort)),
        ("sort_ro", Db(sort::sort_ro)),
        ("geoadd", Db(geo::geoadd)),
        ("geodist", Db(geo::geodist)),
        ("geohash", Db(geo::geohash)),
        ("geopos", Db(geo::geopos)),
        ("geosearch", Db(geo::geosearch)),
        ("geosearchstore", Db(geo::geosearchstore)),
        ("georadius", Db(geo::georadius)),
        ("georadius_ro", Db(geo::georadius_ro)),
        ("georadiusbymember", Db(geo::georadiusbymember)),
        ("georadiusbymember_ro", Db(geo::georadiusbymember_ro)),
        ("pfadd", Db(hll::pfadd)),
        ("pfcount", Db(hll::pfcount)),
        ("pfmerge", Db(hll::pfmerge)),
        ("pfdebug", Db(hll::pfdebug)),
        ("pfselftest", Db(hll::pfselftest)),
        ("xadd", Db(xcmd::xadd)),
        ("xrange", Db(xcmd::xrange)),
        ("xrevrange", Db(xcmd::xrevrange)),
        ("xlen", Db(xcmd::xlen)),
        ("xdel", Db(xcmd::xdel)),
        ("xtrim", Db(xcmd::xtrim)),
        ("xsetid", Db(xcmd::xsetid)),
        ("xread", Db(xread::xread)),
        ("xreadgroup", Db(xread::xread)),
        ("xgroup", Db(xgroup::xgroup)),
        ("xack", Db(xgroup::xack)),
        ("xpending", Db(xgroup::xpending)),
        ("xinfo", Db(xgroup::xinfo)),
        ("xclaim", Db(xclaim::xclaim)),
        ("xautoclaim", Db(xclaim::xautoclaim)),
        // connection and server
        ("acl", Server(acl::cmd::acl_command)),
        ("asking", Server(cmd_server::asking)),
        ("auth", Server(cmd_server::auth_command)),
        ("bgsave", Server(cmd_server::bgsave)),
        ("bgrewriteaof", Server(cmd_server::bgrewriteaof)),
        ("client|getname", Server(cmd_server::client_command)),
        ("client|help", Server(cmd_server::client_command)),
        ("client|id", Server(cmd_server::client_command)),
        ("client|info", Server(cmd_server::client_command)),
        ("client|kill", Server(cmd_server::client_command)),
        ("client|list", Server(cmd_server::client_command)),
        ("client|no-evict", Server(cmd_server::client_command)),
        ("client|no-touch", Server(cmd_server::client_command)),
        ("client|pause", Server(cmd_server::client_command)),
        ("client|reply", Server(cmd_server::client_command)),
        ("client|setinfo", Server(cmd_server::client_command)),
        ("client|setname", Server(cmd_server::client_command)),
        ("client|unpause", Server(cmd_server::client_command)),
        ("client|unblock", Server(blocking::client_unblock_command)),
        ("client|tracking", Server(tracking::cmd::client_tracking)),
        ("client|caching", Server(tracking::cmd::client_caching)),
        ("client|getredir", Server(tracking::cmd::client_getredir)),
        (
            "client|trackinginfo",
            Server(tracking::cmd::client_trackinginfo),
        ),
        ("command", Server(cmd_command::command_command)),
        ("config", Server(cmd_config::config_command)),
        ("debug", Server(cmd_fault::debug_command)),
        ("echo", Server(cmd_server::echo)),
        ("hello", Server(cmd_server::hello_command)),
        ("info", Server(cmd_info::info_command)),
        ("lastsave", Server(cmd_server::lastsave)),
        ("lolwut", Server(cmd_lolwut::lolwut_command)),
        ("eval", Server(scripting::command)),
        ("evalsha", Server(scripting::command)),
        ("eval_ro", Server(scripting::command)),
        ("evalsha_ro", Server(scripting::command)),
        ("fcall", Server(scripting::command)),
        ("fcall_ro", Server(scripting::command)),
        ("script|exists", Server(scripting::command)),
        ("script|flush", Server(scripting::command)),
        ("script|help", Server(scripting::command)),
        ("script|kill", Server(scripting::command)),
        ("script|load", Server(scripting::command)),
        ("function|delete", Server(scripting::command)),
        ("function|dump", Server(scripting::command)),
        ("function|flush", Server(scripting::command)),
        ("function|help", Server(scripting::command)),
        ("function|kill", Server(scripting::command)),
        ("function|list", Server(scripting::command)),
        ("function|load", Server(scripting::command)),
        ("function|restore", Server(scripting::command)),
        ("function|stats", Server(scripting::command)),
        ("ping", Server(cmd_server::ping)),
        ("quit", Server(cmd_server::quit)),
        ("readonly", Server(cmd_server::readonly)),
        ("readwrite", Server(cmd_server::readwrite)),
        ("reset", Server(cmd_server::reset)),
        ("role", Server(cmd_server::role_command)),
        ("save", Server(cmd_server::save)),
        ("select", Server(databases::select)),
        ("shutdown", Server(cmd_fault::shutdown_command)),
        ("time", Server(cmd_server::time)),
        ("failover", Server(replication::failover::failover_command)),
        ("latency", Server(cmd_misc::misc_command)),
        ("memory", Server(cmd_misc::misc_command)),
        ("monitor", Server(cmd_monitor::monitor_command)),
        ("module", Server(cmd_misc::misc_command)),
        ("move", Server(databases::move_command)),
        (
            "replicaof",
            Server(replication::standalone::replicaof_command),
        ),
        (
            "slaveof",
            Server(replication::standalone::replicaof_command),
        ),
        ("slowlog", Server(cmd_misc::misc_command)),
        ("swapdb", Server(databases::swapdb_command)),
        // transactions
        ("discard", Server(cmd_multi::multi_command)),
        ("exec", Server(cmd_multi::multi_command)),
        ("multi", Server(cmd_multi::multi_command)),
        ("unwatch", Server(cmd_multi::multi_command)),
        ("watch", Server(cmd_multi::multi_command)),
        // replication
        ("psync", Server(cmd_server::sync)),
        ("replconf", Server(cmd_server::replconf_command)),
        ("sync", Server(cmd_server::sync)),
        ("wait", Server(cmd_server::wait_command)),
        // cluster
        (
            "cluster|addslots",
            Server(cluster::commands::cluster_command),
        ),
        (
            "cluster|addslotsrange",
            Server(cluster::commands::cluster_command),
        ),
        (
            "cluster|bumpepoch",
            Server(cluster::commands::cluster_command),
        ),
        (
            "cluster|count-failure-reports",
            Server(cluster::commands::cluster_command),
        ),
        (
            "cluster|countkeysinslot",
            Server(cluster::commands::cluster_command),
        ),
        (
            "cluster|delslots",
            Server(cluster::commands::cluster_command),
        ),
        (
            "cluster|delslotsrange",
            Server(cluster::commands::cluster_command),
        ),
        (
            "cluster|failover",
            Server(cluster::commands::cluster_command),
        ),
        (
            "cluster|flushslots",
            Server(cluster::commands::cluster_command),
        ),
        ("cluster|forget", Server(cluster::commands::cluster_command)),
        (
            "cluster|getkeysinslot",
            Server(cluster::commands::cluster_command),
        ),
        ("cluster|help", Server(cluster::commands::cluster_command)),
        ("cluster|info", Server(cluster::commands::cluster_command)),
        (
            "cluster|keyslot",
            Server(cluster::commands::cluster_command),
        ),
        ("cluster|links", Server(cluster::commands::cluster_command)),
        ("cluster|meet", Server(cluster::commands::cluster_command)),
        ("cluster|myid", Server(cluster::commands::cluster_command)),
        (
            "cluster|myshardid",
            Server(cluster::commands::cluster_command),
        ),
        ("cluster|nodes", Server(cluster::commands::cluster_command)),
        (
            "cluster|replicas",
            Server(cluster::commands::cluster_command),
        ),
        (
            "cluster|replicate",
            Server(cluster::commands::cluster_command),
        ),
        ("cluster|reset", Server(cluster::commands::cluster_command)),
        (
            "cluster|saveconfig",
            Server(cluster::commands::cluster_command),
        ),
        (
            "cluster|set-config-epoch",
            Server(cluster::commands::cluster_command),
        ),
        (
            "cluster|setslot",
            Server(cluster::commands::cluster_command),
        ),
        ("cluster|shards", Server(cluster::commands::cluster_command)),
        ("cluster|slaves", Server(cluster::commands::cluster_command)),
        ("cluster|slots", Server(cluster::commands::cluster_command)),
        ("migrate", Server(migrate::migrate_command)),
        ("restore-asking", Server(migrate::restore_asking_command)),
        // pub/sub
        ("psubscribe", Server(pubsub::commands::pubsub_command)),
        ("publish", Server(pubsub::commands::pubsub_command)),
        ("pubsub", Server(pubsub::commands::pubsub_command)),
        ("punsubscribe", Server(pubsub::commands::pubsub_command)),
        ("spublish", Server(pubsub::commands::pubsub_command)),
        ("ssubscribe", Server(pubsub::commands::pubsub_command)),
        ("subscribe", Server(pubsub::commands::pubsub_command)),
        ("sunsubscribe", Server(pubsub::commands::pubsub_command)),
        ("unsubscribe", Server(pubsub::commands::pubsub_command)),
        // blocking
        ("blmove", Server(blocking::blocking_command)),
        ("blmpop", Server(blocking::blocking_command)),
        ("blpop", Server(blocking::blocking_command)),
        ("brpop", Server(blocking::blocking_command)),
        ("brpoplpush", Server(blocking::blocking_command)),
        ("bzmpop", Server(blocking::blocking_command)),
        ("bzpopmax", Server(blocking::blocking_command)),
        ("bzpopmin", Server(blocking::blocking_command)),
    ]
};
