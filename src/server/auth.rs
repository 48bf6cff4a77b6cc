//! AUTH and HELLO AUTH against the ACL users, and the NOAUTH rule.

use bytes::Bytes;

use crate::resp::Value;

use super::acl::Acl;
use super::clients::Clients;
use super::session::Conn;

/// The WRONGPASS error, worded as Redis does.
pub(crate) fn wrongpass() -> Value {
    Value::error("WRONGPASS invalid username-password pair or user is disabled.")
}

/// Log `conn` in as `user` when `pass` is right for it (the failure goes to ACL LOG with
/// `cmd_name`, the command as typed).
pub(crate) fn login(
    conn: &mut Conn,
    acl: &mut Acl,
    clients: &Clients,
    cmd_name: &[u8],
    user: &[u8],
    pass: &[u8],
) -> bool {
    if !acl.login(conn, cmd_name, user, pass) {
        return false;
    }
    conn.authed = true;
    conn.user = String::from_utf8_lossy(user).into_owned();
    clients.set_user(conn.id, &conn.user);
    true
}

/// AUTH [user] password.
pub(crate) fn auth(conn: &mut Conn, acl: &mut Acl, clients: &Clients, args: &[Bytes]) -> Value {
    let (user, pass): (&[u8], &[u8]) = match args.len() {
        2 => {
            if acl.default_nopass() {
                return Value::error(
                    "ERR AUTH <password> called without any password configured for the \
                     default user. Are you sure your configuration is correct?",
                );
            }
            (b"default", &args[1])
        }
        3 => (&args[1], &args[2]),
        _ => return Value::error("ERR syntax error"),
    };
    if login(conn, acl, clients, &args[0], user, pass) {
        Value::ok()
    } else {
        wrongpass()
    }
}
