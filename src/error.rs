//! The one error type of the client.
//!
//! Every failure a caller can meet is an [`Error`] whose [`kind`](Error::kind) says what went
//! wrong in a way a program can match on, whose [`is_retryable`](Error::is_retryable) says
//! whether trying again may help, and whose Display text is written for a person. No error ever
//! carries a password: credentials never enter an error message, and Debug is written by hand
//! to print only the same fields as Display.

use std::fmt;
use std::sync::Arc;

/// What kind of failure an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A socket failed: connect refused, reset, closed by the peer. See
    /// [`Error::maybe_applied`] for whether the request reached the server.
    Io,
    /// The request's deadline (`request_timeout`) or a connect timeout passed.
    Timeout,
    /// The peer sent bytes that are not valid RESP, or a reply that breaks a limit.
    Protocol,
    /// The server answered with an error reply; [`Error::code`] and [`Error::detail`] give it.
    Server,
    /// A command's keys hash to different slots, refused before anything was sent.
    CrossSlot,
    /// The request was redirected (MOVED/ASK) more times than `max_redirects` allows.
    TooManyRedirects,
    /// The cluster answered CLUSTERDOWN (or no node owns the slot) until the deadline.
    ClusterDown,
    /// The client was configured wrongly, or no seed could be reached at start.
    Config,
    /// The server refused the client's credentials (`WRONGPASS`: a failed `AUTH` or `HELLO
    /// AUTH` while connecting), asked for credentials that were not given (`NOAUTH`), or
    /// refused the user a command, key or channel (`NOPERM`). Never retried: the same
    /// credentials get the same answer, so the request fails at once instead of retrying
    /// until its deadline. The message names the user, never the password; [`Error::code`]
    /// gives the server's code.
    Auth,
    /// A reply could not be converted into the type the caller asked for.
    Conversion,
    /// A value could not be encoded or decoded in the format asked for (JSON with
    /// `Json<T>` or a cache's codec): a stored value that does not fit the type, or one that
    /// cannot be serialized. The message names the command.
    Decode,
    /// A cache loader (`Cache::get_or_load`) failed; [`source`](std::error::Error::source)
    /// is its error. Every task waiting on the same load gets it; nothing is cached.
    Load,
    /// A write was sent, then the connection broke before its reply came back: the write may or
    /// may not have been applied, and the client did not re-send it (see
    /// `ClientBuilder::retry_writes_on_disconnect`).
    MaybeApplied,
    /// The client or connection was shut down.
    Closed,
}

/// An error from the client. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    /// For server errors: the first word of the reply (`ERR`, `WRONGTYPE`, `MOVED` ...).
    code: Option<String>,
    /// For I/O failures: whether the request's bytes were handed to the socket.
    sent: bool,
    io_kind: Option<std::io::ErrorKind>,
    /// The error this one wraps (a loader's error), for `source()`.
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Arc::new(Inner {
                kind,
                message: message.into(),
                code: None,
                sent: false,
                io_kind: None,
                source: None,
            }),
        }
    }

    /// An [`ErrorKind::Conversion`] error with `message`: for implementations of
    /// [`FromValue`](crate::FromValue) of a caller's own types, whose reply did not fit.
    pub fn conversion(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Conversion, message)
    }

    /// An error reply from the server: `line` is the whole line, code first.
    pub(crate) fn server(line: &str) -> Error {
        let (code, rest) = match line.split_once(' ') {
            Some((c, r)) => (c, r),
            None => (line, ""),
        };
        let kind = match code {
            "CROSSSLOT" => ErrorKind::CrossSlot,
            "CLUSTERDOWN" => ErrorKind::ClusterDown,
            "WRONGPASS" | "NOPERM" | "NOAUTH" => ErrorKind::Auth,
            _ => ErrorKind::Server,
        };
        Error {
            inner: Arc::new(Inner {
                kind,
                message: rest.to_string(),
                code: Some(code.to_string()),
                sent: true,
                io_kind: None,
                source: None,
            }),
        }
    }

    /// A socket failure; `sent` says whether the request had been written.
    pub(crate) fn io(err: &std::io::Error, context: &str, sent: bool) -> Error {
        Error {
            inner: Arc::new(Inner {
                kind: ErrorKind::Io,
                message: format!("{context}: {err}"),
                code: None,
                sent,
                io_kind: Some(err.kind()),
                source: None,
            }),
        }
    }

    /// The same failure, with `sent` set as given (a connection-wide error applied to one
    /// request).
    pub(crate) fn with_sent(&self, sent: bool) -> Error {
        Error {
            inner: Arc::new(Inner {
                kind: self.inner.kind,
                message: self.inner.message.clone(),
                code: self.inner.code.clone(),
                sent,
                io_kind: self.inner.io_kind,
                source: self.inner.source.clone(),
            }),
        }
    }

    /// An error of `kind` that wraps `source` (a cache loader's error), with `message` as
    /// its text; [`std::error::Error::source`] returns `source`.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) fn wrapping(
        kind: ErrorKind,
        message: impl Into<String>,
        source: Box<dyn std::error::Error + Send + Sync>,
    ) -> Error {
        let mut e = Error::new(kind, message);
        if let Some(inner) = Arc::get_mut(&mut e.inner) {
            inner.source = Some(Arc::from(source));
        }
        e
    }

    /// The same error with `context` (a command name) in front of its message, for
    /// conversion and decode failures, which happen after the reply left the router.
    pub(crate) fn in_command(&self, context: &str) -> Error {
        self.with_message(format!("{context}: {}", self.inner.message))
    }

    /// The same error with `message` as its text.
    fn with_message(&self, message: String) -> Error {
        Error {
            inner: Arc::new(Inner {
                kind: self.inner.kind,
                message,
                code: self.inner.code.clone(),
                sent: self.inner.sent,
                io_kind: self.inner.io_kind,
                source: self.inner.source.clone(),
            }),
        }
    }

    /// For an [`ErrorKind::Auth`] error: the same error with the user it was refused to
    /// named in its message (`None`: no credentials were given). Other errors unchanged.
    pub(crate) fn for_user(self, user: Option<&str>) -> Error {
        if self.inner.kind != ErrorKind::Auth {
            return self;
        }
        let who = match user {
            Some(u) => format!("user '{u}'"),
            None => "no credentials given".to_string(),
        };
        if self.inner.message.contains(&who) {
            return self;
        }
        self.with_message(format!("{} ({who})", self.inner.message))
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// For [`ErrorKind::Server`] (and server-sent CROSSSLOT/CLUSTERDOWN, and
    /// [`ErrorKind::Auth`]): the error code, the first word of the reply, such as `ERR`,
    /// `WRONGTYPE`, `WRONGPASS` or `NOPERM`.
    pub fn code(&self) -> Option<&str> {
        self.inner.code.as_deref()
    }

    /// The message: for server errors the reply text after its code, otherwise a description.
    pub fn detail(&self) -> &str {
        &self.inner.message
    }

    /// True when the request's bytes had been written to a socket before it failed, so a
    /// write may have been applied. Always true for server replies; false for requests that
    /// failed before sending (cross-slot, connect refused ...).
    pub fn maybe_applied(&self) -> bool {
        self.inner.sent
    }

    /// The underlying I/O error kind, for [`ErrorKind::Io`].
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        self.inner.io_kind
    }

    /// True when trying the same request again later may succeed: I/O failures, timeouts,
    /// cluster-down, and the server's transient codes (TRYAGAIN, LOADING, MASTERDOWN,
    /// CLUSTERDOWN, BUSY).
    pub fn is_retryable(&self) -> bool {
        match self.inner.kind {
            ErrorKind::Io | ErrorKind::Timeout | ErrorKind::ClusterDown => true,
            ErrorKind::Server => matches!(
                self.code(),
                Some("TRYAGAIN" | "LOADING" | "MASTERDOWN" | "CLUSTERDOWN" | "BUSY")
            ),
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.inner.code, self.inner.kind) {
            (Some(code), _) => write!(f, "{code} {}", self.inner.message),
            (None, ErrorKind::Io) => write!(
                f,
                "{} ({})",
                self.inner.message,
                if self.inner.sent {
                    "request was sent; it may have been applied"
                } else {
                    "request was never sent"
                }
            ),
            (None, _) => f.write_str(&self.inner.message),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("code", &self.inner.code)
            .field("message", &self.inner.message)
            .field("sent", &self.inner.sent)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

// Errors cross tasks and box into `anyhow`/`Box<dyn Error + Send + Sync>` (axum handlers).
const _: () = {
    const fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<Error>();
};

impl From<crate::resp::ProtocolError> for Error {
    fn from(e: crate::resp::ProtocolError) -> Error {
        Error::new(ErrorKind::Protocol, e.to_string())
    }
}

/// Result alias used throughout the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_keep_code_and_message() {
        let e = Error::server("WRONGTYPE Operation against a key holding the wrong kind of value");
        assert_eq!(e.kind(), ErrorKind::Server);
        assert_eq!(e.code(), Some("WRONGTYPE"));
        assert!(e.detail().starts_with("Operation"));
        assert!(!e.is_retryable());
        assert!(Error::server("TRYAGAIN Multiple keys request during rehashing").is_retryable());
        assert_eq!(
            Error::server("CROSSSLOT Keys in request don't hash to the same slot").kind(),
            ErrorKind::CrossSlot
        );
        assert_eq!(
            e.to_string(),
            "WRONGTYPE Operation against a key holding the wrong kind of value"
        );
    }

    #[test]
    fn auth_refusals_are_their_own_kind_and_name_the_user() {
        for line in [
            "WRONGPASS invalid username-password pair or user is disabled.",
            "NOPERM this user has no permissions to run the 'get' command",
            "NOAUTH Authentication required.",
        ] {
            let e = Error::server(line);
            assert_eq!(e.kind(), ErrorKind::Auth, "{line}");
            assert!(!e.is_retryable());
        }
        let e = Error::server("NOPERM this user has no permissions to run the 'get' command")
            .for_user(Some("app"));
        assert_eq!(e.code(), Some("NOPERM"));
        assert!(e.to_string().contains("user 'app'"), "{e}");
        // Named once, however often it passes through.
        assert_eq!(e.clone().for_user(Some("app")).to_string(), e.to_string());
        let none = Error::server("NOAUTH Authentication required.").for_user(None);
        assert!(none.to_string().contains("no credentials given"), "{none}");
        let other = Error::server("ERR boom").for_user(Some("app"));
        assert_eq!(other.to_string(), "ERR boom");
    }

    #[test]
    fn io_errors_say_whether_sent() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let e = Error::io(&io, "connection to 1.2.3.4:1 lost", true);
        assert!(e.to_string().contains("may have been applied"));
        assert!(e.maybe_applied());
        assert!(!e.with_sent(false).maybe_applied());
        assert!(e.is_retryable());
    }
}
