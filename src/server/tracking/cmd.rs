//! `CLIENT TRACKING`, `CLIENT CACHING`, `CLIENT GETREDIR`, `CLIENT TRACKINGINFO`: Redis
//! 7.0's checks, in its order, with its error texts (`clientCommand` in networking.c).

use bytes::Bytes;

use super::Options;
use crate::resp::Value;
use crate::server::args::{not_integer, parse_i64, syntax_error};
use crate::server::call::{Call, Outcome};

/// `CLIENT TRACKING on|off [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]`.
pub(crate) fn client_tracking(c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(tracking(c))
}

fn tracking(c: &mut Call<'_, '_>) -> Value {
    let args = c.args;
    let mut redirect: i64 = 0;
    let mut opts = Options::default();
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = args[j].to_ascii_lowercase();
        match opt.as_slice() {
            b"redirect" if more => {
                j += 1;
                if redirect != 0 {
                    return Value::error("ERR A client can only redirect to a single other client");
                }
                let Some(id) = parse_i64(&args[j]) else {
                    return not_integer();
                };
                redirect = id;
                // The target must exist now (it may go away later: see RedirBroken).
                if id <= 0 || !c.shared.clients.exists(id as u64) {
                    return Value::error("ERR The client ID you want redirect to does not exist");
                }
            }
            b"bcast" => opts.bcast = true,
            b"optin" => opts.optin = true,
            b"optout" => opts.optout = true,
            b"noloop" => opts.noloop = true,
            b"prefix" if more => {
                j += 1;
                prefixes.push(args[j].clone());
            }
            _ => return syntax_error(),
        }
        j += 1;
    }
    let id = c.conn.id;
    match args[2].to_ascii_lowercase().as_slice() {
        b"on" => {
            let st = c.locked.get();
            if let Some(e) = check_on(st.tracking.tracker(id), opts, &prefixes) {
                return e;
            }
            st.tracking.enable(id, redirect as u64, opts, &prefixes);
            st.sync_tracking();
            c.conn.tracking = Some((opts, redirect as u64));
            // Invalidations reach the connection through its mailbox.
            c.conn.pubsub.mailbox();
            Value::ok()
        }
        b"off" => {
            let st = c.locked.get();
            st.tracking.disable(id);
            st.sync_tracking();
            c.conn.tracking = None;
            c.conn.caching = false;
            Value::ok()
        }
        _ => syntax_error(),
    }
}

/// The checks of `CLIENT TRACKING on` against the options and the client's current state.
fn check_on(current: Option<&super::Tracker>, opts: Options, prefixes: &[Bytes]) -> Option<Value> {
    if !opts.bcast && !prefixes.is_empty() {
        return Some(Value::error(
            "ERR PREFIX option requires BCAST mode to be enabled",
        ));
    }
    if current.is_some_and(|t| t.opts.bcast != opts.bcast) {
        return Some(Value::error(
            "ERR You can't switch BCAST mode on/off before disabling tracking for this client, \
             and then re-enabling it with a different mode.",
        ));
    }
    if opts.bcast && (opts.optin || opts.optout) {
        return Some(Value::error(
            "ERR OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if opts.optin && opts.optout {
        return Some(Value::error(
            "ERR You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if current.is_some_and(|t| (opts.optin && t.opts.optout) || (opts.optout && t.opts.optin)) {
        return Some(Value::error(
            "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, \
             and then re-enabling it with a different mode.",
        ));
    }
    if opts.bcast {
        return prefix_collision(current.map(|t| &t.prefixes), prefixes);
    }
    None
}

/// Two prefixes collide when one starts the other (both would report the same key).
fn overlap(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

fn prefix_collision(
    existing: Option<&std::collections::BTreeSet<Bytes>>,
    prefixes: &[Bytes],
) -> Option<Value> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (i, p) in prefixes.iter().enumerate() {
        if let Some(old) = existing.into_iter().flatten().find(|old| overlap(old, p)) {
            return Some(Value::error(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single \
                 client must not overlap.",
                text(p),
                text(old)
            )));
        }
        if let Some(other) = prefixes[i + 1..].iter().find(|o| overlap(p, o)) {
            // (Redis 7.0 also enables tracking and answers OK after this error when the
            // overlapping pair is not the first prefix's: one reply here.)
            return Some(Value::error(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a \
                 single client must not overlap.",
                text(p),
                text(other)
            )));
        }
    }
    None
}

/// `CLIENT CACHING yes|no`: track (OPTIN) or skip (OPTOUT) the keys of the next command.
pub(crate) fn client_caching(c: &mut Call<'_, '_>) -> Outcome {
    let Some((opts, _)) = c.conn.tracking else {
        return Outcome::Reply(Value::error(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with \
             OPTIN or OPTOUT mode enabled",
        ));
    };
    let reply = match c.args[2].to_ascii_lowercase().as_slice() {
        b"yes" if opts.optin => {
            c.conn.caching = true;
            Value::ok()
        }
        b"yes" => Value::error(
            "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
        ),
        b"no" if opts.optout => {
            c.conn.caching = true;
            Value::ok()
        }
        b"no" => Value::error(
            "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
        ),
        _ => syntax_error(),
    };
    Outcome::Reply(reply)
}

/// `CLIENT GETREDIR`: the redirect target, 0 for none, -1 when not tracking.
pub(crate) fn client_getredir(c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(Value::Integer(
        c.conn.tracking.map_or(-1, |(_, redirect)| redirect as i64),
    ))
}

/// `CLIENT TRACKINGINFO`: flags (a set), redirect, prefixes.
pub(crate) fn client_trackinginfo(c: &mut Call<'_, '_>) -> Outcome {
    let bulk = |s: &'static str| Value::BulkString(Bytes::from_static(s.as_bytes()));
    let id = c.conn.id;
    let caching = c.conn.caching;
    let st = c.locked.get();
    let t = st.tracking.tracker(id);
    let mut flags = Vec::new();
    let mut redirect = -1;
    let mut prefixes = Vec::new();
    match t {
        None => flags.push(bulk("off")),
        Some(t) => {
            flags.push(bulk("on"));
            if t.opts.bcast {
                flags.push(bulk("bcast"));
            }
            if t.opts.optin {
                flags.push(bulk("optin"));
                if caching {
                    flags.push(bulk("caching-yes"));
                }
            }
            if t.opts.optout {
                flags.push(bulk("optout"));
                if caching {
                    flags.push(bulk("caching-no"));
                }
            }
            if t.opts.noloop {
                flags.push(bulk("noloop"));
            }
            if t.broken {
                flags.push(bulk("broken_redirect"));
            }
            redirect = t.redirect as i64;
            prefixes = t.prefixes.iter().cloned().map(Value::BulkString).collect();
        }
    }
    Outcome::Reply(Value::Map(vec![
        (bulk("flags"), Value::Set(flags)),
        (bulk("redirect"), Value::Integer(redirect)),
        (bulk("prefixes"), Value::Array(prefixes)),
    ]))
}
