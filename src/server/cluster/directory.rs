//! The process-wide directory of running nodes by client address: how the in-process bus,
//! elections, replicas and pub/sub reach another node. A leaf.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::server::node::NodeShared;

fn registry() -> &'static Mutex<HashMap<SocketAddr, Weak<NodeShared>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<SocketAddr, Weak<NodeShared>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Make a node reachable by its client address.
pub(crate) fn register(addr: SocketAddr, node: &Arc<NodeShared>) {
    let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
    map.retain(|_, w| w.strong_count() > 0);
    map.insert(addr, Arc::downgrade(node));
}

/// Remove a stopped node (only if `node` is what is registered there: a later node may
/// have taken the address since).
pub(crate) fn unregister(addr: SocketAddr, node: &NodeShared) {
    let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
    if map
        .get(&addr)
        .is_some_and(|w| std::ptr::eq(w.as_ptr(), node))
    {
        map.remove(&addr);
    }
}

/// The running node at `addr`, if any.
pub(crate) fn lookup(addr: SocketAddr) -> Option<Arc<NodeShared>> {
    let node = registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&addr)?
        .upgrade()?;
    (!node.is_shut_down()).then_some(node)
}
