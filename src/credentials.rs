//! Credentials and where they come from: [`Credentials`], [`CredentialsProvider`].
//!
//! Every connection the client opens asks the provider for credentials and authenticates
//! with them (`HELLO 3 AUTH` or `AUTH`), so a rotated password or a fresh token reaches new
//! connections without rebuilding the client. Credentials with a
//! [`valid_until`](Credentials::valid_until) also make each live connection ask again before
//! that instant and send `AUTH` on itself: `AUTH` is one more command on the multiplexed
//! connection, so requests in flight are never dropped (the model: cloud IAM tokens that
//! expire every 15 minutes). The static
//! [`ClientBuilder::credentials`](crate::ClientBuilder::credentials) is a provider that always
//! hands out the same pair.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::error::Error;

/// A user name and password (or token) to authenticate with. `Debug` never shows the
/// password, and the client never puts it in an error, a log line or a span.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// ACL user; `None` means the `default` user (`AUTH password`).
    pub user: Option<String>,
    /// The password or token.
    pub password: String,
    /// When these credentials stop being accepted (a token's expiry). Before then, every
    /// live connection asks the provider again and re-authenticates with `AUTH`; `None`:
    /// they do not expire, and only new connections ask the provider.
    pub valid_until: Option<Instant>,
}

impl Credentials {
    /// Credentials that do not expire.
    pub fn new(user: Option<&str>, password: &str) -> Credentials {
        Credentials {
            user: user.map(str::to_string),
            password: password.to_string(),
            valid_until: None,
        }
    }

    /// The same credentials, expiring at `at`.
    #[must_use]
    pub fn valid_until(mut self, at: Instant) -> Credentials {
        self.valid_until = Some(at);
        self
    }

    /// The user name as the server knows it (`default` when none is given).
    pub(crate) fn user_name(&self) -> &str {
        self.user.as_deref().unwrap_or("default")
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("valid_until", &self.valid_until)
            .finish()
    }
}

/// The future a [`CredentialsProvider`] returns.
pub type CredentialsFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Credentials, Error>> + Send + 'a>>;

/// Where the client gets credentials: asked for every new connection, and again before the
/// [`valid_until`](Credentials::valid_until) of the credentials a live connection holds.
///
/// Object-safe, so the client keeps it as `Arc<dyn CredentialsProvider>`. Writing one is
/// writing an async block: either a closure returning a future,
///
/// ```no_run
/// # async fn f() -> Result<(), redcluster::Error> {
/// use redcluster::{Client, Credentials};
/// let client = Client::builder(["10.0.0.1:6379"])
///     .credentials_provider(|| async {
///         let token = std::env::var("REDIS_TOKEN").unwrap_or_default();
///         Ok(Credentials::new(Some("app"), &token))
///     })
///     .build()
///     .await?;
/// # let _ = client; Ok(()) }
/// ```
///
/// or a type whose method boxes an `async move` block (for state the closure cannot hold,
/// such as a cached token):
///
/// ```
/// use std::time::{Duration, Instant};
/// use redcluster::{Credentials, CredentialsFuture, CredentialsProvider};
///
/// #[derive(Debug)]
/// struct IamTokens {
///     user: String,
/// }
///
/// impl CredentialsProvider for IamTokens {
///     fn credentials(&self) -> CredentialsFuture<'_> {
///         Box::pin(async move {
///             let token = "fetched-from-the-cloud".to_string(); // an HTTP call, say
///             Ok(Credentials {
///                 user: Some(self.user.clone()),
///                 password: token,
///                 valid_until: Some(Instant::now() + Duration::from_secs(15 * 60)),
///             })
///         })
///     }
/// }
/// ```
///
/// The provider is called once per connection (and per re-authentication), concurrently when
/// many connections open at once: one that fetches tokens over the network should cache
/// them. An error it returns fails that connection attempt with the provider's error.
pub trait CredentialsProvider: Send + Sync + 'static {
    /// The credentials to authenticate with now.
    ///
    /// # Errors
    /// Whatever the provider could not get; the connection attempt fails with it.
    fn credentials(&self) -> CredentialsFuture<'_>;
}

impl<F, Fut> CredentialsProvider for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Credentials, Error>> + Send + 'static,
{
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self())
    }
}

/// The provider behind [`ClientBuilder::credentials`](crate::ClientBuilder::credentials)
/// and a URL's user and password: always the same pair.
#[derive(Clone)]
struct Fixed(Credentials);

impl CredentialsProvider for Fixed {
    fn credentials(&self) -> CredentialsFuture<'_> {
        let c = self.0.clone();
        Box::pin(async move { Ok(c) })
    }
}

/// The client's side of a provider: calls it and remembers the last user it named, so
/// errors can say which user the server refused.
#[derive(Clone)]
pub(crate) struct Auth {
    provider: Arc<dyn CredentialsProvider>,
    /// The user of the last credentials handed out (or of the fixed ones).
    last_user: Arc<Mutex<Option<String>>>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("user", &self.user())
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Auth {
    /// Fixed credentials (the builder's `credentials`, a URL's user and password).
    pub(crate) fn fixed(c: Credentials) -> Auth {
        let user = c.user_name().to_string();
        Auth {
            provider: Arc::new(Fixed(c)),
            last_user: Arc::new(Mutex::new(Some(user))),
        }
    }

    /// A caller's provider.
    pub(crate) fn provider(p: Arc<dyn CredentialsProvider>) -> Auth {
        Auth {
            provider: p,
            last_user: Arc::new(Mutex::new(None)),
        }
    }

    /// Ask the provider.
    ///
    /// # Errors
    /// The provider's error.
    pub(crate) async fn fetch(&self) -> Result<Credentials, Error> {
        let c = self.provider.credentials().await?;
        *self.last_user.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.user_name().to_string());
        Ok(c)
    }

    /// The user last authenticated as (`default` for a password alone), once known.
    pub(crate) fn user(&self) -> Option<String> {
        self.last_user
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials::new(Some("app"), "hunter2-secret")
            .valid_until(Instant::now() + std::time::Duration::from_secs(60));
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(
            shown.contains("app") && shown.contains("redacted"),
            "{shown}"
        );
        let auth = Auth::fixed(c);
        assert!(!format!("{auth:?}").contains("hunter2-secret"));
    }

    #[tokio::test]
    async fn closures_are_providers_and_the_last_user_is_remembered() {
        let auth = Auth::provider(Arc::new(|| async {
            Ok(Credentials::new(Some("rotating"), "t0ken"))
        }));
        assert_eq!(auth.user(), None);
        let c = auth.fetch().await.unwrap();
        assert_eq!(c.password, "t0ken");
        assert_eq!(auth.user().as_deref(), Some("rotating"));
        let fixed = Auth::fixed(Credentials::new(None, "pw"));
        assert_eq!(fixed.user().as_deref(), Some("default"));
        assert_eq!(fixed.fetch().await.unwrap().user, None);
    }
}
