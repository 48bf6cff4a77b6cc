//! The few keyless server commands scripts call that the keyspace engine does not answer.

use bytes::Bytes;

use crate::resp::Value;
use crate::server::node::NodeState;

/// True when [`run`] answers `name` (lower case).
pub(crate) fn supports(name: &[u8]) -> bool {
    matches!(name, b"ping" | b"echo" | b"time")
}

/// Run a command [`supports`] accepts (arity already checked).
pub(crate) fn run(_st: &mut NodeState, argv: &[Bytes], _resp3: bool) -> Value {
    match argv[0].to_ascii_lowercase().as_slice() {
        b"ping" => match argv.get(1) {
            Some(m) => Value::BulkString(m.clone()),
            None => Value::simple("PONG"),
        },
        b"echo" => Value::BulkString(argv[1].clone()),
        _ => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Value::Array(vec![
                Value::bulk(now.as_secs().to_string()),
                Value::bulk(now.subsec_micros().to_string()),
            ])
        }
    }
}
