//! A node id: a leaf every part of cluster mode names nodes by.

/// A node id: 40 lower-case hex characters, stored inline so it is `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NodeId(pub(crate) [u8; 40]);

impl NodeId {
    /// A fresh random id.
    pub(crate) fn random() -> NodeId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut id = [0u8; 40];
        for b in id.iter_mut() {
            *b = HEX[rand::random::<usize>() % 16];
        }
        NodeId(id)
    }

    /// Parse an id given by a peer; `None` unless it is 40 hex characters.
    pub(crate) fn parse(text: &[u8]) -> Option<NodeId> {
        if text.len() != 40 || !text.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut id = [0u8; 40];
        for (d, s) in id.iter_mut().zip(text) {
            *d = s.to_ascii_lowercase();
        }
        Some(NodeId(id))
    }

    /// The id as text.
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Debug for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
