//! The connection handshake: HELLO (RESP3) or AUTH (RESP2), CLIENT SETNAME, SELECT, READONLY,
//! CLIENT TRACKING (client-side caching).
//!
//! All handshake commands are queued at once, so they travel in one write and cost one round
//! trip.

use super::{reply_of, ConnectOptions, Connection};
use crate::credentials::Credentials;
use crate::error::Error;
use crate::resp::Value;

/// Run the handshake on a fresh connection: ask the credentials provider (if any), then
/// authenticate, name and set up the connection in one round trip.
///
/// # Returns
/// The credentials the connection authenticated with, if any.
pub(super) async fn run(
    conn: &Connection,
    opts: &ConnectOptions,
) -> Result<Option<Credentials>, Error> {
    let creds = match &opts.auth {
        Some(auth) => Some(auth.fetch().await.map_err(|e| {
            Error::new(
                e.kind(),
                format!(
                    "credentials provider failed for a connection to {}: {e}",
                    conn.addr()
                ),
            )
        })?),
        None => None,
    };
    let mut commands: Vec<(&'static str, Vec<&[u8]>)> = Vec::new();
    if opts.resp3 {
        let mut hello: Vec<&[u8]> = vec![b"HELLO", b"3"];
        if let Some(c) = &creds {
            hello.push(b"AUTH");
            hello.push(c.user_name().as_bytes());
            hello.push(c.password.as_bytes());
        }
        if let Some(name) = &opts.client_name {
            hello.push(b"SETNAME");
            hello.push(name.as_bytes());
        }
        commands.push(("HELLO", hello));
    } else {
        if let Some(c) = &creds {
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
    let db = opts.database.to_string();
    if opts.database != 0 {
        commands.push(("SELECT", vec![b"SELECT", db.as_bytes()]));
    }
    if opts.readonly {
        commands.push(("READONLY", vec![b"READONLY"]));
    }
    if let Some(t) = &opts.tracking {
        commands.push((
            "CLIENT TRACKING",
            t.command.iter().map(Vec::as_slice).collect(),
        ));
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
            // A replica without cluster support (standalone) serves reads without READONLY.
            Value::Error(line)
                if label == "READONLY" && line.ends_with(b"cluster support disabled") =>
            {
                continue
            }
            Value::Error(line) => {
                let text = String::from_utf8_lossy(&line);
                let (code, rest) = text.split_once(' ').unwrap_or((&text, ""));
                // Say which step failed without repeating any argument (passwords), and
                // which user an auth refusal was for.
                return Err(Error::server(&format!(
                    "{code} {label} to {} failed: {rest}",
                    conn.addr()
                ))
                .for_user(creds.as_ref().map(Credentials::user_name)));
            }
            _ => continue,
        }
    }
    Ok(creds)
}
