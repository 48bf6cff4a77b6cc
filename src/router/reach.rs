//! How the client builder's reach options (`address_map`, `tls`, a `rediss://` URL) become the
//! connector every connection of the client is opened through.

use std::net::IpAddr;
use std::sync::Arc;

use crate::connection::{AddressMap, Connect, Dial};
use crate::error::Error;

/// The reach options of a builder.
#[derive(Clone, Default)]
pub(crate) struct Reach {
    /// Set by a `rediss://` URL: TLS even when `tls` was not called.
    pub(crate) tls_required: bool,
    /// `ClientBuilder::tls`.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::client::TlsConfig>,
    /// `ClientBuilder::address_map`.
    pub(crate) map: Option<AddressMap>,
}

impl std::fmt::Debug for Reach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Reach");
        d.field("tls_required", &self.tls_required);
        #[cfg(feature = "tls")]
        d.field("tls", &self.tls);
        d.field("address_map", &self.map.is_some()).finish()
    }
}

impl Reach {
    /// The connector to install, or `None` for plain TCP.
    ///
    /// # Errors
    /// [`ErrorKind::Config`]: TLS asked for in a build without the `tls` feature, or TLS
    /// settings that cannot be used.
    pub(crate) fn connector(&self, seeds: &[String]) -> Result<Option<Arc<dyn Connect>>, Error> {
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut dial = Dial {
            map: self.map.clone(),
            ..Dial::default()
        };
        #[cfg(feature = "tls")]
        {
            let tls = match (&self.tls, self.tls_required) {
                (Some(t), _) => Some(t.clone()),
                (None, true) => Some(crate::client::TlsConfig::new()),
                (None, false) => None,
            };
            if let Some(tls) = tls {
                let config = tls.build()?;
                dial.tls = Some(crate::connection::TlsDial {
                    connector: tokio_rustls::TlsConnector::from(config),
                    name_override: tls.name_override().map(str::to_string),
                    seed_name: seed_name(seeds),
                });
            }
        }
        #[cfg(not(feature = "tls"))]
        if self.tls_required {
            let _ = seeds;
            return Err(Error::new(
                crate::error::ErrorKind::Config,
                "a rediss:// or valkeys:// URL asks for TLS, which needs redcluster's `tls` \
                 feature",
            ));
        }
        let plain = dial.map.is_none();
        #[cfg(feature = "tls")]
        let plain = plain && dial.tls.is_none();
        Ok((!plain).then(|| Arc::new(dial) as Arc<dyn Connect>))
    }
}

/// The first seed given by host name rather than IP.
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
fn seed_name(seeds: &[String]) -> Option<String> {
    seeds.iter().find_map(|s| {
        let (host, _) = crate::connection::split_addr(s).ok()?;
        host.parse::<IpAddr>().is_err().then(|| host.to_string())
    })
}
