//! The connected clients of a node: CLIENT LIST and CLIENT KILL, and the hook fault
//! injection uses to drop connections.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

use super::pubsub::Mailbox;

/// What other connections may see of one client.
#[derive(Debug)]
struct Entry {
    peer: SocketAddr,
    local: SocketAddr,
    created: Instant,
    name: Option<Bytes>,
    /// The ACL user it authenticated as.
    user: String,
    kill: Arc<Notify>,
    /// Its mailbox, once it has one (a RESP3 or subscribed connection, or a tracking one):
    /// how tracking invalidations reach it.
    mail: Option<Mailbox>,
}

/// Registry of a node's client connections.
#[derive(Debug, Default)]
pub(crate) struct Clients {
    by_id: Mutex<HashMap<u64, Entry>>,
}

/// Which clients CLIENT KILL closes.
#[derive(Debug, Default)]
pub(crate) struct KillFilter {
    /// Only this id.
    pub(crate) id: Option<u64>,
    /// Only this peer address.
    pub(crate) addr: Option<String>,
    /// Only connections to this local address.
    pub(crate) laddr: Option<String>,
    /// Spare this id (SKIPME yes).
    pub(crate) skip: Option<u64>,
    /// Only connections authenticated as this ACL user.
    pub(crate) user: Option<String>,
}

impl Clients {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add a connection; the returned `Notify` fires when it must close.
    pub(crate) fn register(&self, id: u64, peer: SocketAddr, local: SocketAddr) -> Arc<Notify> {
        let kill = Arc::new(Notify::new());
        self.map().insert(
            id,
            Entry {
                peer,
                local,
                created: Instant::now(),
                name: None,
                user: "default".to_string(),
                kill: kill.clone(),
                mail: None,
            },
        );
        kill
    }

    /// Remove a closed connection.
    pub(crate) fn unregister(&self, id: u64) {
        self.map().remove(&id);
    }

    /// Record the mailbox of connection `id` (see [`Clients::mailbox`]).
    pub(crate) fn set_mail(&self, id: u64, mail: Mailbox) {
        if let Some(e) = self.map().get_mut(&id) {
            e.mail = Some(mail);
        }
    }

    /// The mailbox of connection `id`: `None` when it is gone or has none (a RESP2
    /// connection that never subscribed: nothing tracking sends could reach it anyway).
    pub(crate) fn mailbox(&self, id: u64) -> Option<Mailbox> {
        self.map().get(&id).and_then(|e| e.mail.clone())
    }

    /// Whether connection `id` is open.
    pub(crate) fn exists(&self, id: u64) -> bool {
        self.map().contains_key(&id)
    }

    /// Record CLIENT SETNAME.
    pub(crate) fn set_name(&self, id: u64, name: Option<Bytes>) {
        if let Some(e) = self.map().get_mut(&id) {
            e.name = name;
        }
    }

    /// Record the user a connection authenticated as.
    pub(crate) fn set_user(&self, id: u64, user: &str) {
        if let Some(e) = self.map().get_mut(&id) {
            user.clone_into(&mut e.user);
        }
    }

    /// The connections authenticated as `user`.
    pub(crate) fn ids_of_user(&self, user: &str) -> Vec<u64> {
        let map = self.map();
        map.iter()
            .filter(|(_, e)| e.user == user)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Close the connections authenticated as `user` (a deleted user), except `skip`.
    pub(crate) fn kill_user(&self, user: &str, skip: u64) {
        for (id, e) in self.map().iter() {
            if e.user == user && *id != skip {
                e.kill.notify_one();
            }
        }
    }

    /// Close the matching connections; how many.
    pub(crate) fn kill(&self, filter: &KillFilter) -> usize {
        let map = self.map();
        let mut n = 0;
        for (id, e) in map.iter() {
            let hit = filter.id.map_or(true, |want| want == *id)
                && filter
                    .addr
                    .as_ref()
                    .map_or(true, |a| *a == e.peer.to_string())
                && filter
                    .laddr
                    .as_ref()
                    .map_or(true, |a| *a == e.local.to_string())
                && filter.user.as_ref().map_or(true, |u| *u == e.user)
                && filter.skip != Some(*id);
            if hit {
                e.kill.notify_one();
                n += 1;
            }
        }
        n
    }

    /// Close every client connection of the node (fault injection).
    pub(crate) fn kill_all(&self) -> usize {
        self.kill(&KillFilter::default())
    }

    /// CLIENT LIST: `own` is the caller's full line; others show what is known of them.
    pub(crate) fn list(&self, own_id: u64, own: &str) -> String {
        let map = self.map();
        let mut ids: Vec<&u64> = map.keys().collect();
        ids.sort();
        let mut out = String::new();
        for id in ids {
            if *id == own_id {
                out.push_str(own);
            } else {
                let e = &map[id];
                let name = e
                    .name
                    .as_ref()
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .unwrap_or_default();
                out.push_str(&format!(
                    "id={id} addr={} laddr={} fd=8 name={name} age={} idle=0 flags=N db=0 sub=0 \
                     psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 \
                     rbp=16384 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=NULL user={} \
                     redir=-1 resp=2",
                    e.peer,
                    e.local,
                    e.created.elapsed().as_secs(),
                    e.user
                ));
            }
            out.push('\n');
        }
        out
    }
}
