//! Passwords and users: AUTH, HELLO AUTH, and the NOAUTH rule.

use bytes::Bytes;

use crate::resp::Value;

use super::node::NodeConfig;

/// The WRONGPASS error, worded as Redis does.
pub(crate) fn wrongpass() -> Value {
    Value::error("WRONGPASS invalid username-password pair or user is disabled.")
}

/// Check `user`/`pass` against the configuration. `user` is `default` for the one-argument
/// form. Comparison takes the same time for every password of a given length.
pub(crate) fn check(config: &NodeConfig, user: &[u8], pass: &[u8]) -> bool {
    if user == b"default" {
        return match &config.requirepass {
            // The default user has `nopass` when no password is set: anything goes.
            None => true,
            Some(p) => ct_eq(p.as_bytes(), pass),
        };
    }
    config
        .users
        .iter()
        .any(|(u, p)| u.as_bytes() == user && ct_eq(p.as_bytes(), pass))
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// AUTH [user] password.
///
/// # Returns
/// The reply, and the user name when authentication succeeded.
pub(crate) fn auth(config: &NodeConfig, args: &[Bytes]) -> (Value, Option<String>) {
    let (user, pass): (&[u8], &[u8]) = match args.len() {
        2 => {
            if config.requirepass.is_none() {
                return (
                    Value::error(
                        "ERR AUTH <password> called without any password configured for the \
                         default user. Are you sure your configuration is correct?",
                    ),
                    None,
                );
            }
            (b"default", &args[1])
        }
        3 => (&args[1], &args[2]),
        _ => return (Value::error("ERR syntax error"), None),
    };
    if check(config, user, pass) {
        (
            Value::ok(),
            Some(String::from_utf8_lossy(user).into_owned()),
        )
    } else {
        (wrongpass(), None)
    }
}
