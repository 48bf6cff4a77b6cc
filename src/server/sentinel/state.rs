//! A Sentinel's view of what it monitors, as sentinel.c keeps it: masters by name, each with
//! its replicas and the other Sentinels watching it, and per instance the link state, the
//! flags (`s_down`, `o_down`, `promoted` ...) and what its INFO said.
//!
//! Everything here is plain data behind the Sentinel's one lock; the tasks that talk to the
//! network (`link`) and the timer (`monitor`, `failover`) change it under that lock and
//! never hold it across an await.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// The channel Sentinels announce themselves on, on every monitored node.
pub(crate) const HELLO_CHANNEL: &str = "__sentinel__:hello";

/// Wall-clock milliseconds, as Redis' `mstime()` (only differences are ever used).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Instance flags, sentinel.c's `SRI_*` bits that are not the instance kind.
pub(crate) mod flag {
    pub(crate) const S_DOWN: u32 = 1 << 0;
    pub(crate) const O_DOWN: u32 = 1 << 1;
    /// Another Sentinel said the master is down (IS-MASTER-DOWN-BY-ADDR).
    pub(crate) const MASTER_DOWN: u32 = 1 << 2;
    pub(crate) const FAILOVER_IN_PROGRESS: u32 = 1 << 3;
    pub(crate) const PROMOTED: u32 = 1 << 4;
    pub(crate) const RECONF_SENT: u32 = 1 << 5;
    pub(crate) const RECONF_INPROG: u32 = 1 << 6;
    pub(crate) const RECONF_DONE: u32 = 1 << 7;
    pub(crate) const FORCE_FAILOVER: u32 = 1 << 8;
}

/// What an instance is to this Sentinel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Master,
    Replica,
    Sentinel,
}

impl Kind {
    /// The word events and replies use (`sentinelRedisInstanceTypeStr`).
    pub(crate) fn word(self) -> &'static str {
        match self {
            Kind::Master => "master",
            Kind::Replica => "slave",
            Kind::Sentinel => "sentinel",
        }
    }
}

/// The failover state machine's states, in sentinel.c's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FailoverState {
    None,
    WaitStart,
    SelectSlave,
    SendSlaveofNoone,
    WaitPromotion,
    ReconfSlaves,
    UpdateConfig,
}

impl FailoverState {
    /// As `SENTINEL MASTER` shows it (`failover-state`).
    pub(crate) fn word(self) -> &'static str {
        match self {
            FailoverState::None => "none",
            FailoverState::WaitStart => "wait_start",
            FailoverState::SelectSlave => "select_slave",
            FailoverState::SendSlaveofNoone => "send_slaveof_noone",
            FailoverState::WaitPromotion => "wait_promotion",
            FailoverState::ReconfSlaves => "reconf_slaves",
            FailoverState::UpdateConfig => "update_config",
        }
    }
}

/// Which reply a command sent on a link waits for, so the link applies it where it belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplyTo {
    Info,
    Ping,
    Publish,
    IsMasterDown,
    Discard,
}

/// One command for a link's task: the arguments and who takes the reply.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) args: Vec<Bytes>,
    pub(crate) reply_to: ReplyTo,
}

/// The connection state of one instance (sentinel.c's `instanceLink`): a command link and,
/// for masters and replicas, a pub/sub link on the hello channel.
#[derive(Debug)]
pub(crate) struct Link {
    /// Commands for the connected command link; `None` while disconnected.
    pub(crate) tx: Option<mpsc::UnboundedSender<Job>>,
    /// The command link's task (connecting or connected).
    pub(crate) task: Option<AbortHandle>,
    /// The pub/sub link's task.
    pub(crate) pubsub: Option<AbortHandle>,
    /// Bumped whenever the links are dropped, so a late reply of an old link is ignored.
    pub(crate) generation: u64,
    pub(crate) disconnected: bool,
    pub(crate) pending_commands: i64,
    pub(crate) cc_conn_time: i64,
    pub(crate) pc_conn_time: i64,
    pub(crate) pc_last_activity: i64,
    /// When the oldest unanswered PING was sent (0: none pending).
    pub(crate) act_ping_time: i64,
    pub(crate) last_ping_time: i64,
    pub(crate) last_avail_time: i64,
    pub(crate) last_pong_time: i64,
}

impl Link {
    fn new(now: i64) -> Link {
        Link {
            tx: None,
            task: None,
            pubsub: None,
            generation: 0,
            disconnected: true,
            pending_commands: 0,
            cc_conn_time: 0,
            pc_conn_time: 0,
            pc_last_activity: 0,
            act_ping_time: now,
            last_ping_time: 0,
            last_avail_time: now,
            last_pong_time: now,
        }
    }

    /// Drop both connections (their tasks end); the timer reconnects.
    pub(crate) fn close(&mut self) {
        self.close_cc();
        if let Some(t) = self.pubsub.take() {
            t.abort();
        }
    }

    /// Drop the command connection only.
    pub(crate) fn close_cc(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        self.tx = None;
        self.disconnected = true;
        self.pending_commands = 0;
        self.generation += 1;
    }

    /// Queue a command on the connected link; false when disconnected.
    pub(crate) fn send(&mut self, args: Vec<Bytes>, reply_to: ReplyTo) -> bool {
        let Some(tx) = &self.tx else { return false };
        if tx.send(Job { args, reply_to }).is_err() {
            return false;
        }
        self.pending_commands += 1;
        true
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.close();
    }
}

/// A master, replica or Sentinel as this Sentinel knows it.
#[derive(Debug)]
pub(crate) struct Instance {
    /// Unique in this Sentinel, so a reply finds its instance even after resets.
    pub(crate) id: u64,
    pub(crate) kind: Kind,
    /// Master: its name; replica: `ip:port`; Sentinel: its run id.
    pub(crate) name: String,
    pub(crate) ip: String,
    pub(crate) port: u16,
    pub(crate) runid: Option<String>,
    pub(crate) flags: u32,
    pub(crate) link: Link,
    pub(crate) down_after: i64,
    pub(crate) last_pub_time: i64,
    pub(crate) s_down_since: i64,
    pub(crate) o_down_since: i64,
    // Masters and replicas: what the last INFO said.
    pub(crate) info: Option<String>,
    pub(crate) info_refresh: i64,
    pub(crate) role_reported: Kind,
    pub(crate) role_reported_time: i64,
    // Replicas.
    pub(crate) master_link_down_time: i64,
    pub(crate) slave_master_host: Option<String>,
    pub(crate) slave_master_port: u16,
    pub(crate) master_link_up: bool,
    pub(crate) priority: i64,
    pub(crate) repl_offset: u64,
    pub(crate) replica_announced: i64,
    pub(crate) slave_conf_change_time: i64,
    pub(crate) reconf_sent_time: i64,
    // Sentinels (and a master's own vote).
    pub(crate) last_hello_time: i64,
    pub(crate) leader: Option<String>,
    pub(crate) leader_epoch: u64,
    pub(crate) last_master_down_reply_time: i64,
}

impl Instance {
    pub(crate) fn new(
        id: u64,
        kind: Kind,
        name: String,
        ip: &str,
        port: u16,
        down_after: i64,
    ) -> Self {
        let now = now_ms();
        Instance {
            id,
            kind,
            name,
            ip: ip.to_string(),
            port,
            runid: None,
            flags: 0,
            link: Link::new(now),
            down_after,
            last_pub_time: now,
            s_down_since: 0,
            o_down_since: 0,
            info: None,
            info_refresh: 0,
            role_reported: if kind == Kind::Master {
                Kind::Master
            } else {
                Kind::Replica
            },
            role_reported_time: now,
            master_link_down_time: 0,
            slave_master_host: None,
            slave_master_port: 0,
            master_link_up: false,
            priority: 100,
            repl_offset: 0,
            replica_announced: 1,
            slave_conf_change_time: now,
            reconf_sent_time: 0,
            last_hello_time: now,
            leader: None,
            leader_epoch: 0,
            last_master_down_reply_time: now,
        }
    }

    pub(crate) fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    /// True when this instance listens on `ip:port`.
    pub(crate) fn at(&self, ip: &str, port: u16) -> bool {
        self.port == port && self.ip.eq_ignore_ascii_case(ip)
    }

    /// No SDOWN/ODOWN in the last `ms` milliseconds (`sentinelRedisInstanceNoDownFor`).
    pub(crate) fn no_down_for(&self, ms: i64) -> bool {
        let recent = self.s_down_since.max(self.o_down_since);
        recent == 0 || now_ms() - recent > ms
    }
}

/// A monitored master: its own instance plus its group's settings, replicas and Sentinels.
#[derive(Debug)]
pub(crate) struct Master {
    pub(crate) inst: Instance,
    pub(crate) quorum: u32,
    pub(crate) failover_timeout: i64,
    pub(crate) parallel_syncs: i64,
    /// `auth-pass` for the data nodes (never shown in replies or logs).
    pub(crate) auth_pass: Option<String>,
    pub(crate) auth_user: Option<String>,
    pub(crate) config_epoch: u64,
    pub(crate) failover_epoch: u64,
    pub(crate) failover_state: FailoverState,
    pub(crate) failover_state_change_time: i64,
    pub(crate) failover_start_time: i64,
    /// The replica being promoted (its instance id).
    pub(crate) promoted: Option<u64>,
    pub(crate) replicas: Vec<Instance>,
    pub(crate) sentinels: Vec<Instance>,
}

impl Master {
    /// The promoted replica, if one is selected.
    pub(crate) fn promoted_replica(&self) -> Option<&Instance> {
        let id = self.promoted?;
        self.replicas.iter().find(|r| r.id == id)
    }

    /// The address clients should use: the promoted replica's once it acknowledged its
    /// promotion (`sentinelGetCurrentMasterAddress`), else the master's.
    pub(crate) fn current_addr(&self) -> (&str, u16) {
        if self.inst.has(flag::FAILOVER_IN_PROGRESS)
            && self.failover_state >= FailoverState::ReconfSlaves
        {
            if let Some(p) = self.promoted_replica() {
                return (&p.ip, p.port);
            }
        }
        (&self.inst.ip, self.inst.port)
    }

    /// `master <name> <ip> <port>`: the `%@` of an event about the master itself.
    pub(crate) fn describe(&self) -> String {
        format!(
            "master {} {} {}",
            self.inst.name, self.inst.ip, self.inst.port
        )
    }

    /// `<kind> <name> <ip> <port> @ <master> <ip> <port>`: the `%@` of an event about one
    /// of this master's replicas or Sentinels.
    pub(crate) fn describe_member(&self, i: &Instance) -> String {
        format!(
            "{} {} {} {} @ {} {} {}",
            i.kind.word(),
            i.name,
            i.ip,
            i.port,
            self.inst.name,
            self.inst.ip,
            self.inst.port
        )
    }
}

/// Timing parameters (`SENTINEL DEBUG`), in milliseconds; Redis' defaults.
#[derive(Clone, Debug)]
pub(crate) struct Timing {
    pub(crate) info_period: i64,
    pub(crate) ping_period: i64,
    pub(crate) ask_period: i64,
    pub(crate) publish_period: i64,
    pub(crate) default_down_after: i64,
    pub(crate) default_failover_timeout: i64,
    pub(crate) slave_reconf_timeout: i64,
    pub(crate) min_link_reconnect_period: i64,
    pub(crate) election_timeout: i64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            info_period: 10_000,
            ping_period: 1000,
            ask_period: 1000,
            publish_period: 2000,
            default_down_after: 30_000,
            default_failover_timeout: 180_000,
            slave_reconf_timeout: 10_000,
            min_link_reconnect_period: 15_000,
            election_timeout: 10_000,
        }
    }
}

/// One published event: the channel (`+sdown`) and the message.
pub(crate) type Event = (String, String);

/// The Sentinel's event feed: its own pub/sub (every subscribed connection gets a
/// receiver) and the log.
#[derive(Clone, Debug)]
pub(crate) struct Events(pub(crate) tokio::sync::broadcast::Sender<Event>);

impl Events {
    /// Publish `kind` with `msg` (a slow subscriber misses old events, it never blocks us).
    pub(crate) fn emit(&self, kind: &str, msg: String) {
        tracing::debug!(target: "redcluster::sentinel", "{kind} {msg}");
        let _ = self.0.send((kind.to_string(), msg));
    }
}

/// One Sentinel's whole state.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) myid: String,
    /// The port this Sentinel announces (its listener's).
    pub(crate) port: u16,
    pub(crate) current_epoch: u64,
    pub(crate) masters: Vec<Master>,
    pub(crate) timing: Timing,
    /// `sentinel-pass`/`sentinel-user`: how this Sentinel authenticates to the others.
    pub(crate) sentinel_pass: Option<String>,
    pub(crate) sentinel_user: Option<String>,
    pub(crate) announce_ip: Option<String>,
    pub(crate) announce_port: u16,
    pub(crate) next_id: u64,
    /// Where events (`+sdown`, `+switch-master` ...) are published.
    pub(crate) events: Events,
}

impl State {
    pub(crate) fn new(myid: String, port: u16, timing: Timing, events: Events) -> State {
        State {
            myid,
            port,
            current_epoch: 0,
            masters: Vec::new(),
            timing,
            sentinel_pass: None,
            sentinel_user: None,
            announce_ip: None,
            announce_port: 0,
            next_id: 1,
            events,
        }
    }

    pub(crate) fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The index of the master named `name`.
    pub(crate) fn master_index(&self, name: &[u8]) -> Option<usize> {
        self.masters
            .iter()
            .position(|m| m.inst.name.as_bytes() == name)
    }

    pub(crate) fn master(&self, name: &[u8]) -> Option<&Master> {
        self.masters.iter().find(|m| m.inst.name.as_bytes() == name)
    }

    /// Add a master to monitor (`SENTINEL MONITOR`, `sentinel monitor` in the config).
    pub(crate) fn add_master(
        &mut self,
        name: &str,
        ip: &str,
        port: u16,
        quorum: u32,
    ) -> &mut Master {
        let id = self.fresh_id();
        let inst = Instance::new(
            id,
            Kind::Master,
            name.to_string(),
            ip,
            port,
            self.timing.default_down_after,
        );
        self.masters.push(Master {
            inst,
            quorum,
            failover_timeout: self.timing.default_failover_timeout,
            parallel_syncs: 1,
            auth_pass: None,
            auth_user: None,
            config_epoch: 0,
            failover_epoch: 0,
            failover_state: FailoverState::None,
            failover_state_change_time: 0,
            failover_start_time: 0,
            promoted: None,
            replicas: Vec::new(),
            sentinels: Vec::new(),
        });
        let last = self.masters.len() - 1;
        &mut self.masters[last]
    }
}
