//! `redis://` and `rediss://` URLs: [`Client::from_url`] and [`ClientBuilder::url`].
//!
//! ```text
//! redis://[user[:password]@]host[:port][,host[:port]...][/0][?option=value&...]
//! rediss://...                 TLS (needs the `tls` feature)
//! valkey://  valkeys://        the same as redis:// and rediss://
//! ```
//!
//! Several seeds go in one URL separated by commas — `rediss://app:s3cret@h1:6379,h2:6379` —
//! because a cluster client wants more than one way in. The port defaults to 6379; IPv6
//! hosts are written in brackets (`[::1]:7000`). User and password are percent-decoded, so
//! a password with `@`, `:` or `/` is written `%40`, `%3A`, `%2F`. The path selects a
//! database (`/3`: [`ClientBuilder::database`]); a cluster has only database 0, so with a
//! cluster it must be empty, `/` or `/0` (`build` says so otherwise).
//!
//! Query options: `read_from=primary|primary_preferred|replica_preferred|replica|nearest|any`,
//! `request_timeout_ms=N`, `connect_timeout_ms=N`, `protocol=2|3`, `client_name=NAME`. An
//! unknown option is an error rather than silently ignored, so a typo is noticed.
//!
//! Every error is [`ErrorKind::Config`] and names the part that is wrong; no error ever
//! contains the password (nor anything left of the last `@`, where it lives).

use std::time::Duration;

use super::{Client, ClientBuilder};
use crate::error::{Error, ErrorKind};
use crate::router::ReadFrom;

/// What a URL says, before it is applied to a builder.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct ParsedUrl {
    /// `rediss://` or `valkeys://`.
    pub(super) tls: bool,
    /// `host:port` for each seed, in the URL's order (IPv6 hosts keep their brackets).
    pub(super) seeds: Vec<String>,
    pub(super) user: Option<String>,
    pub(super) password: Option<String>,
    pub(super) read_from: Option<ReadFrom>,
    pub(super) request_timeout: Option<Duration>,
    pub(super) connect_timeout: Option<Duration>,
    pub(super) resp3: Option<bool>,
    pub(super) client_name: Option<String>,
    /// The path's database number (`/3`), if any.
    pub(super) database: Option<u32>,
}

impl std::fmt::Debug for ParsedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedUrl")
            .field("tls", &self.tls)
            .field("seeds", &self.seeds)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("read_from", &self.read_from)
            .field("client_name", &self.client_name)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Config, format!("bad URL: {msg}"))
}

/// Parse a URL (see the module docs for its form).
pub(super) fn parse(url: &str) -> Result<ParsedUrl, Error> {
    let url = url.trim();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("it does not start with a scheme such as redis:// or rediss://"))?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "redis" | "valkey" => false,
        "rediss" | "valkeys" => true,
        other => {
            return Err(bad(format_args!(
                "scheme {other:?} is not redis, rediss, valkey or valkeys"
            )))
        }
    };
    // The password may hold any character (if the caller forgot to percent-encode), so
    // everything up to the LAST '@' is user information and is never echoed.
    let (userinfo, rest) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(info) => parse_userinfo(info)?,
    };
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (hosts, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let database = match path.trim_start_matches('/') {
        "" => None,
        n => Some(n.parse::<u32>().map_err(|_| {
            bad(format_args!(
                "database path {path:?}: write a database number (/3), /0 or nothing"
            ))
        })?),
    };
    let mut seeds = Vec::new();
    for (i, host) in hosts.split(',').enumerate() {
        seeds.push(parse_host(host.trim(), i + 1)?);
    }
    let mut parsed = ParsedUrl {
        tls,
        seeds,
        user,
        password,
        read_from: None,
        request_timeout: None,
        connect_timeout: None,
        resp3: None,
        client_name: None,
        database,
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        apply_option(&mut parsed, pair)?;
    }
    Ok(parsed)
}

fn parse_userinfo(info: &str) -> Result<(Option<String>, Option<String>), Error> {
    let (user, password) = match info.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (info, None),
    };
    let user = decode(user).map_err(|e| bad(format_args!("user: {e}")))?;
    let password = match password {
        // Never say what is wrong *inside* the password, only that it is.
        Some(p) => Some(decode(p).map_err(|_| {
            bad("password is not valid percent-encoding (write % as %25, @ as %40)")
        })?),
        None => None,
    };
    if password.is_none() && !user.is_empty() {
        return Err(bad(format_args!(
            "user {user:?} has no password; write user:password@ (percent-encoded)"
        )));
    }
    let user = (!user.is_empty()).then_some(user);
    Ok((user, password))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` -> `host:port`.
fn parse_host(host: &str, n: usize) -> Result<String, Error> {
    if host.is_empty() {
        return Err(bad(format_args!("host {n} is empty")));
    }
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| bad(format_args!("host {n} {host:?}: '[' without ']'")))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| {
                bad(format_args!(
                    "host {n} {host:?}: expected ':port' after ']'"
                ))
            })?),
        };
        (format!("[{addr}]"), port)
    } else {
        match host.rsplit_once(':') {
            Some((name, _)) if name.contains(':') => {
                return Err(bad(format_args!(
                    "host {n} {host:?}: write an IPv6 address in brackets, [addr]:port"
                )))
            }
            Some((name, port)) => (name.to_string(), Some(port)),
            None => (host.to_string(), None),
        }
    };
    if name.is_empty() || name == "[]" {
        return Err(bad(format_args!("host {n} {host:?} has no host name")));
    }
    if name.contains(|c: char| c.is_whitespace() || c == '/' || c == '%') {
        return Err(bad(format_args!("host {n} {host:?} is not a host name")));
    }
    let port = match port {
        None => 6379,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => {
                return Err(bad(format_args!(
                    "host {n} {host:?}: port {p:?} is not a number from 1 to 65535"
                )))
            }
        },
    };
    Ok(format!("{name}:{port}"))
}

fn apply_option(parsed: &mut ParsedUrl, pair: &str) -> Result<(), Error> {
    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
    let value = decode(value).map_err(|e| bad(format_args!("option {key:?}: {e}")))?;
    let millis = |value: &str| -> Result<Duration, Error> {
        value
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| {
                bad(format_args!(
                    "option {key}={value:?}: expected a whole number of milliseconds"
                ))
            })
    };
    match key {
        "read_from" => parsed.read_from = Some(parse_read_from(&value)?),
        "request_timeout_ms" => parsed.request_timeout = Some(millis(&value)?),
        "connect_timeout_ms" => parsed.connect_timeout = Some(millis(&value)?),
        "protocol" => {
            parsed.resp3 = Some(match value.as_str() {
                "2" | "resp2" => false,
                "3" | "resp3" => true,
                _ => {
                    return Err(bad(format_args!(
                        "option protocol={value:?}: expected 2 or 3"
                    )))
                }
            })
        }
        "client_name" => {
            if value.is_empty() || value.contains(|c: char| c.is_whitespace()) {
                return Err(bad(format_args!(
                    "option client_name={value:?}: must be non-empty without spaces"
                )));
            }
            parsed.client_name = Some(value);
        }
        other => {
            return Err(bad(format_args!(
                "unknown option {other:?} (known: read_from, request_timeout_ms, \
                 connect_timeout_ms, protocol, client_name)"
            )))
        }
    }
    Ok(())
}

fn parse_read_from(value: &str) -> Result<ReadFrom, Error> {
    Ok(
        match value.to_ascii_lowercase().replace('-', "_").as_str() {
            "primary" | "master" => ReadFrom::Primary,
            "primary_preferred" | "primarypreferred" => ReadFrom::PrimaryPreferred,
            "replica_preferred" | "replicapreferred" => ReadFrom::ReplicaPreferred,
            "replica" => ReadFrom::Replica,
            "nearest" => ReadFrom::Nearest,
            "any" => ReadFrom::Any,
            _ => {
                return Err(bad(format_args!(
                    "option read_from={value:?}: expected primary, primary_preferred, \
                 replica_preferred, replica, nearest or any"
                )))
            }
        },
    )
}

/// Percent-decode `s` into UTF-8 text. The error never contains `s`.
fn decode(s: &str) -> Result<String, &'static str> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or("'%' not followed by two hex digits")?;
            let hi = (hex[0] as char).to_digit(16);
            let lo = (hex[1] as char).to_digit(16);
            match (hi, lo) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => return Err("'%' not followed by two hex digits"),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 after percent-decoding")
}

impl Client {
    /// Start configuring a client from a URL such as
    /// `rediss://app:s3cret@node1.example.com:6379,node2.example.com:6379?read_from=replica_preferred`
    /// (the full form is in [`ClientBuilder::url`]). Further builder calls refine it.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the part of the URL that is wrong (never the password).
    pub fn from_url(url: &str) -> Result<ClientBuilder, Error> {
        let none: [&str; 0] = [];
        ClientBuilder::new(none).apply_url(parse(url)?)
    }
}

impl ClientBuilder {
    /// Take seeds, TLS, user, password and the query options from a URL:
    ///
    /// ```text
    /// redis://[user[:password]@]host[:port][,host[:port]...][/0][?option=value&...]
    /// ```
    ///
    /// `rediss://` turns TLS on (the `tls` feature; platform trust roots unless
    /// `ClientBuilder::tls` says otherwise); `valkey://` and `valkeys://` are aliases.
    /// Several seeds are separated by commas: `rediss://app:pw@h1:6379,h2:6379,h3:6379`.
    /// User and password are percent-decoded. Options: `read_from` (`primary`,
    /// `primary_preferred`, `replica_preferred`, `replica`, `nearest`, `any`),
    /// `request_timeout_ms`, `connect_timeout_ms`, `protocol` (`2` or `3`), `client_name`.
    /// The URL's seeds replace the builder's; the options it names override earlier calls.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the part of the URL that is wrong (never the password).
    pub fn url(self, url: &str) -> Result<ClientBuilder, Error> {
        self.apply_url(parse(url)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(url: &str) -> String {
        let e = parse(url).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        e.to_string()
    }

    #[test]
    fn plain_url_with_defaults() {
        let p = parse("redis://10.0.0.1").unwrap();
        assert!(!p.tls);
        assert_eq!(p.seeds, ["10.0.0.1:6379"]);
        assert_eq!((p.user, p.password), (None, None));
        assert_eq!(p.read_from, None);
    }

    #[test]
    fn schemes_and_aliases() {
        for (url, tls) in [
            ("redis://h:1", false),
            ("REDIS://h:1", false),
            ("rediss://h:1", true),
            ("valkey://h:1", false),
            ("valkeys://h:1", true),
        ] {
            assert_eq!(parse(url).unwrap().tls, tls, "{url}");
        }
        assert!(err("http://h:1").contains("scheme \"http\""));
        assert!(err("h:6379").contains("scheme"));
    }

    #[test]
    fn several_seeds_users_and_ipv6() {
        let p = parse("rediss://app:s3cret@h1:6379,h2:6380, [::1]:7000,[fe80::1]/0").unwrap();
        assert!(p.tls);
        assert_eq!(
            p.seeds,
            ["h1:6379", "h2:6380", "[::1]:7000", "[fe80::1]:6379"]
        );
        assert_eq!(p.user.as_deref(), Some("app"));
        assert_eq!(p.password.as_deref(), Some("s3cret"));
        let p = parse("redis://:only-pass@h").unwrap();
        assert_eq!(p.user, None);
        assert_eq!(p.password.as_deref(), Some("only-pass"));
    }

    #[test]
    fn user_and_password_are_percent_decoded() {
        let p = parse("redis://us%65r:p%40ss%3Aw%2Frd%25@h:1").unwrap();
        assert_eq!(p.user.as_deref(), Some("user"));
        assert_eq!(p.password.as_deref(), Some("p@ss:w/rd%"));
        // An unencoded '@' in the password still works: the last '@' ends it.
        let p = parse("redis://u:a@b@h:1").unwrap();
        assert_eq!(p.password.as_deref(), Some("a@b"));
        assert_eq!(p.seeds, ["h:1"]);
    }

    #[test]
    fn query_options() {
        let p = parse(
            "redis://h:1/?read_from=replica_preferred&request_timeout_ms=2500\
             &connect_timeout_ms=300&protocol=3&client_name=web%2D1",
        )
        .unwrap();
        assert_eq!(p.read_from, Some(ReadFrom::ReplicaPreferred));
        assert_eq!(p.request_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(p.connect_timeout, Some(Duration::from_millis(300)));
        assert_eq!(p.resp3, Some(true));
        assert_eq!(p.client_name.as_deref(), Some("web-1"));
        for (v, rf) in [
            ("primary", ReadFrom::Primary),
            ("primary_preferred", ReadFrom::PrimaryPreferred),
            ("replica", ReadFrom::Replica),
            ("nearest", ReadFrom::Nearest),
            ("any", ReadFrom::Any),
        ] {
            let p = parse(&format!("redis://h?read_from={v}")).unwrap();
            assert_eq!(p.read_from, Some(rf));
        }
        assert_eq!(parse("redis://h?protocol=2").unwrap().resp3, Some(false));
    }

    #[test]
    fn errors_name_the_bad_part() {
        assert!(err("redis://h:abc").contains("host 1 \"h:abc\": port \"abc\""));
        assert!(err("redis://h:1,h2:0").contains("host 2"));
        assert!(err("redis://h:1,,h3").contains("host 2 is empty"));
        assert!(err("redis://").contains("host 1 is empty"));
        assert!(err("redis://::1:6379").contains("brackets"));
        assert!(err("redis://[::1:6379").contains("without ']'"));
        assert!(err("redis://h/x").contains("database path \"/x\""));
        assert!(err("redis://h?read_from=leader").contains("read_from=\"leader\""));
        assert!(err("redis://h?protocol=4").contains("protocol"));
        assert!(err("redis://h?request_timeout_ms=1s").contains("request_timeout_ms"));
        assert!(err("redis://h?connect_timeout_ms=-1").contains("connect_timeout_ms"));
        assert!(err("redis://h?client_name=a%20b").contains("client_name"));
        assert!(err("redis://h?timeout=5").contains("unknown option \"timeout\""));
        assert!(err("redis://bob@h").contains("user \"bob\" has no password"));
        assert!(err("redis://b%zzob:x@h").contains("user:"));
    }

    #[test]
    fn errors_never_show_the_password() {
        for url in [
            "redis://app:Hunter2Secret@h:abc",
            "redis://app:Hunter2Secret%zz@h:1",
            "redis://app:Hunter2Secret%@h:1",
            "redis://app:Hunter2Secret@h/five",
            "redis://app:Hunter2Secret@h?read_from=x",
            "redis://app:Hunter2Secret@",
            "ftp://app:Hunter2Secret@h",
            "redis://app:Hunter2/Secret@h:1?bogus",
        ] {
            let e = parse(url).unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("Hunter2"), "{url} -> {shown}");
        }
        let p = parse("redis://app:Hunter2Secret@h").unwrap();
        assert!(!format!("{p:?}").contains("Hunter2"));
    }

    #[test]
    fn builder_takes_the_url() {
        let b =
            Client::from_url("redis://app:pw@h1:1,h2:2?read_from=replica&client_name=x").unwrap();
        let shown = format!("{b:?}");
        assert!(shown.contains("h1:1") && shown.contains("h2:2"), "{shown}");
        assert!(shown.contains("Replica"), "{shown}");
        assert!(!shown.contains("pw\""), "{shown}");
        let b = Client::builder(["old:1"])
            .client_name("kept")
            .url("redis://new:2")
            .unwrap();
        let shown = format!("{b:?}");
        assert!(
            shown.contains("new:2") && !shown.contains("old:1"),
            "{shown}"
        );
        assert!(shown.contains("kept"), "{shown}");
        let shown = format!("{:?}", Client::from_url("redis://h/3").unwrap());
        assert!(shown.contains("database: 3"), "{shown}");
        assert_eq!(
            Client::from_url("redis://h:x").unwrap_err().kind(),
            ErrorKind::Config
        );
    }
}
