//! Which node serves a request: Redis 7's `getNodeByQuery`, answering MOVED, ASK, CROSSSLOT,
//! TRYAGAIN or CLUSTERDOWN when this node must not run it.

use bytes::Bytes;

use crate::command::{self, CommandSpec};
use crate::resp::Value;
use crate::slot::key_slot;

use super::state::NodeId;
use crate::server::db::ExecCtx;
use crate::server::node::{now_ms, NodeState};
use crate::server::registry::{self, Traits};

/// Call `f` with every key of `args`, where [`command::key_positions`] (the key part of
/// [`command::classify`], which the client routes by too) finds them.
pub(crate) fn for_each_key<'a>(
    spec: &CommandSpec,
    args: &'a [Bytes],
    mut f: impl FnMut(&'a Bytes),
) {
    for i in command::key_positions(spec, args).iter() {
        if let Some(k) = args.get(i) {
            f(k);
        }
    }
}

/// Accumulates the keys of one request (or of a whole transaction).
#[derive(Debug, Default)]
pub(crate) struct Route {
    slot: Option<u16>,
    owner: Option<NodeId>,
    multiple: bool,
    migrating: bool,
    importing: bool,
    missing: usize,
    existing: usize,
    error: Option<Value>,
    write: bool,
    asking_cmd: bool,
    migrate_cmd: bool,
    pubsub: bool,
}

impl Route {
    /// Add the keys of one command.
    pub(crate) fn add(
        &mut self,
        st: &mut NodeState,
        spec: &CommandSpec,
        traits: Traits,
        args: &[Bytes],
    ) {
        self.write |= traits.write;
        self.asking_cmd |= traits.asking;
        self.migrate_cmd |= traits.migrate;
        self.pubsub = traits.pubsub;
        for_each_key(spec, args, |key| self.key(st, key));
    }

    fn key(&mut self, st: &mut NodeState, key: &Bytes) {
        if self.error.is_some() {
            return;
        }
        let slot = key_slot(key);
        match self.slot {
            None => {
                self.slot = Some(slot);
                self.owner = st.cluster.slots[usize::from(slot)];
                let Some(owner) = self.owner else {
                    self.error = Some(Value::error("CLUSTERDOWN Hash slot not served"));
                    return;
                };
                if owner == st.cluster.myself && st.cluster.migrating.contains_key(&slot) {
                    self.migrating = true;
                } else if st.cluster.importing.contains_key(&slot) {
                    self.importing = true;
                }
            }
            Some(s) if s != slot => {
                self.error = Some(Value::error(
                    "CROSSSLOT Keys in request don't hash to the same slot",
                ));
                return;
            }
            Some(_) => self.multiple = true,
        }
        // Shard channels are no keys: they stay on the source until the slot moves.
        if (self.migrating || self.importing) && !self.pubsub {
            // A key a MIGRATE is moving stays served here until it is gone for good.
            if exists(&mut st.db, key) || st.migrate_fence.contains(key) {
                self.existing += 1;
            } else {
                self.missing += 1;
            }
        }
    }

    /// Decide.
    ///
    /// # Errors
    /// The redirect or refusal to send the client instead of running the request here.
    pub(crate) fn finish(
        self,
        st: &NodeState,
        readonly_conn: bool,
        asking: bool,
    ) -> Result<(), Value> {
        // Cluster mode off: every key is served here.
        if st.standalone {
            return Ok(());
        }
        if let Some(e) = self.error {
            return Err(e);
        }
        let (Some(slot), Some(owner)) = (self.slot, self.owner) else {
            return Ok(());
        };
        let cl = &st.cluster;
        if !cl.ok {
            if !cl.allow_reads_when_down {
                return Err(Value::error("CLUSTERDOWN The cluster is down"));
            }
            if self.write {
                return Err(Value::error(
                    "CLUSTERDOWN The cluster is down and only accepts read commands",
                ));
            }
        }
        // MIGRATE moves keys freely while the slot is open, wherever they are.
        if (self.migrating || self.importing) && self.migrate_cmd {
            return Ok(());
        }
        if self.migrating && self.missing > 0 {
            // Some keys here and some moved: nobody can serve it until the move ends.
            if self.existing > 0 {
                return Err(tryagain());
            }
            if let Some(to) = cl.migrating.get(&slot).and_then(|id| cl.nodes.get(id)) {
                return Err(Value::error(format!("ASK {slot} {}", cl.redirect_to(to))));
            }
        }
        if self.importing && (asking || self.asking_cmd) {
            if self.multiple && self.missing > 0 {
                return Err(tryagain());
            }
            return Ok(());
        }
        if owner == cl.myself {
            return Ok(());
        }
        if readonly_conn && !self.write && cl.me().replica_of == Some(owner) {
            return Ok(());
        }
        match cl.nodes.get(&owner) {
            Some(node) => Err(Value::error(format!(
                "MOVED {slot} {}",
                cl.redirect_to(node)
            ))),
            None => Err(Value::error("CLUSTERDOWN Hash slot not served")),
        }
    }
}

fn tryagain() -> Value {
    Value::error("TRYAGAIN Multiple keys request during rehashing of slot")
}

/// Route one command.
///
/// # Errors
/// As [`Route::finish`].
pub(crate) fn check_one(
    st: &mut NodeState,
    spec: &CommandSpec,
    traits: Traits,
    args: &[Bytes],
    readonly_conn: bool,
    asking: bool,
) -> Result<(), Value> {
    let mut route = Route::default();
    route.add(st, spec, traits, args);
    route.finish(st, readonly_conn, asking)
}

fn exists(db: &mut crate::server::db::Db, key: &Bytes) -> bool {
    let args = [Bytes::from_static(b"EXISTS"), key.clone()];
    let ctx = ExecCtx {
        now_ms: now_ms(),
        resp3: false,
    };
    matches!(registry::execute_db(db, &args, &ctx), Value::Integer(n) if n > 0)
}
