//! MONITOR, the command (the feed itself is `monitor`).

use crate::resp::Value;

use super::call::{Call, Outcome};
use super::limits::ClientClass;

/// MONITOR: this connection receives every command from now on.
pub(crate) fn monitor_command(c: &mut Call<'_, '_>) -> Outcome {
    if c.conn.monitor.is_some() {
        // Already monitoring: Redis ignores it without a reply.
        return Outcome::NoReply;
    }
    let limit = c.shared.limits.output(ClientClass::Normal);
    let feed = c.locked.get().monitors.add(c.conn.id, limit.hard);
    c.conn.monitor = Some(feed);
    Outcome::Reply(Value::ok())
}
