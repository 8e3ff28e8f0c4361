//! An HTTP client for tests: rustls with the ring provider, optional private CA, client
//! certificate and basic auth.

use std::time::Duration;

use base64::Engine as _;

/// How to build a [`client`].
#[derive(Default, Clone)]
pub struct ClientOptions {
    /// PEM of the CA(s) to trust *instead of* the system roots (for self-made certificates).
    pub ca_pem: Option<Vec<u8>>,
    /// PEM of a client certificate followed by its private key (mutual TLS).
    pub identity_pem: Option<Vec<u8>>,
    /// Basic auth sent with every request: (user, password).
    pub basic_auth: Option<(String, String)>,
    /// Per-request timeout (default 10 s).
    pub timeout: Option<Duration>,
}

impl ClientOptions {
    /// Trust this CA (PEM).
    pub fn ca(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }
    /// Send basic auth with every request.
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        self.basic_auth = Some((user.into(), password.into()));
        self
    }
    /// Present this client certificate + key (PEM).
    pub fn identity(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.identity_pem = Some(pem.into());
        self
    }
}

/// Installs rustls' ring provider as the process default (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds a `reqwest::Client` from `opts`.
pub fn client(opts: &ClientOptions) -> anyhow::Result<reqwest::Client> {
    install_crypto_provider();
    let mut b = reqwest::Client::builder()
        .timeout(opts.timeout.unwrap_or(Duration::from_secs(10)))
        .no_proxy();
    if let Some(pem) = &opts.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)?;
        anyhow::ensure!(!certs.is_empty(), "no certificate in the CA PEM");
        b = b.tls_certs_only(certs);
    }
    if let Some(pem) = &opts.identity_pem {
        b = b.identity(reqwest::Identity::from_pem(pem)?);
    }
    if let Some((u, p)) = &opts.basic_auth {
        let mut h = reqwest::header::HeaderMap::new();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        let mut v = reqwest::header::HeaderValue::from_str(&format!("Basic {token}"))?;
        v.set_sensitive(true);
        h.insert(reqwest::header::AUTHORIZATION, v);
        b = b.default_headers(h);
    }
    Ok(b.build()?)
}
