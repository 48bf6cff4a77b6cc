//! The connection handshake: HELLO (RESP3) or AUTH (RESP2), CLIENT SETNAME, READONLY.
//!
//! All handshake commands are queued at once, so they travel in one write and cost one round
//! trip.

use std::fmt;

use super::{reply_of, ConnectOptions, Connection};
use crate::error::Error;
use crate::resp::Value;

/// A user name and password. Debug never shows the password.
#[derive(Clone)]
pub(crate) struct Credentials {
    /// ACL user; `None` means the `default` user.
    pub(crate) user: Option<String>,
    /// The password. Never logged, never put in an error.
    pub(crate) password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Run the handshake on a fresh connection.
pub(super) async fn run(conn: &Connection, opts: &ConnectOptions) -> Result<(), Error> {
    let mut commands: Vec<(&'static str, Vec<&[u8]>)> = Vec::new();
    if opts.resp3 {
        let mut hello: Vec<&[u8]> = vec![b"HELLO", b"3"];
        if let Some(c) = &opts.credentials {
            hello.push(b"AUTH");
            hello.push(c.user.as_deref().unwrap_or("default").as_bytes());
            hello.push(c.password.as_bytes());
        }
        if let Some(name) = &opts.client_name {
            hello.push(b"SETNAME");
            hello.push(name.as_bytes());
        }
        commands.push(("HELLO", hello));
    } else {
        if let Some(c) = &opts.credentials {
            let mut auth: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(u) = &c.user {
                auth.push(u.as_bytes());
            }
            auth.push(c.password.as_bytes());
            commands.push(("AUTH", auth));
        }
        if let Some(name) = &opts.client_name {
            commands.push((
                "CLIENT SETNAME",
                vec![b"CLIENT", b"SETNAME", name.as_bytes()],
            ));
        }
    }
    if opts.readonly {
        commands.push(("READONLY", vec![b"READONLY"]));
    }
    let mut waits = Vec::with_capacity(commands.len());
    for (label, args) in &commands {
        let rx = conn.send(false, |buf| {
            crate::resp::encode_command(buf, args.iter().copied())
        })?;
        waits.push((*label, rx));
    }
    for (label, rx) in waits {
        match reply_of(rx.await)? {
            Value::Error(line) => {
                let text = String::from_utf8_lossy(&line);
                let (code, rest) = text.split_once(' ').unwrap_or((&text, ""));
                // Say which step failed without repeating any argument (passwords), and
                // which user an auth refusal was for.
                return Err(Error::server(&format!(
                    "{code} {label} to {} failed: {rest}",
                    conn.addr()
                ))
                .for_user(opts.user().as_deref()));
            }
            _ => continue,
        }
    }
    Ok(())
}
