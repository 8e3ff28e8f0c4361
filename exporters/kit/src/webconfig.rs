//! `--web.config.file`: TLS and basic auth in the Prometheus exporter-toolkit format.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # relative paths are relative to this file
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert   # or NoClientCert, RequestClientCert,
//!                                  # RequireAnyClientCert, VerifyClientCertIfGiven
//!   client_ca_file: ca.crt
//!   min_version: TLS12             # TLS12 or TLS13
//! http_server_config:
//!   headers: { X-Frame-Options: deny }
//! basic_auth_users:
//!   alice: $2y$10$...               # bcrypt hash
//! ```
//!
//! The file is checked for changes on every new connection (by modification time and size),
//! so rotated certificates and changed users apply without a restart. A file that no longer
//! parses is reported in the log and the previous configuration stays in force.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{bail, Context as _};
use arc_swap::ArcSwap;
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    max_version: Option<String>,
    // Accepted for compatibility with exporter-toolkit files; rustls chooses these itself.
    #[serde(default)]
    cipher_suites: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    curve_preferences: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    client_allowed_sans: Option<Vec<String>>,
    // Inline PEM variants of exporter-toolkit >= 0.11.
    cert: Option<String>,
    key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHttp {
    /// Accepted for compatibility; the server speaks HTTP/1.1 and, over TLS, what ALPN picks.
    #[serde(default, rename = "http2")]
    _http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    tls_server_config: Option<FileTls>,
    http_server_config: Option<FileHttp>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

/// A parsed and validated web configuration.
#[derive(Default)]
pub struct WebConfig {
    /// TLS settings, when TLS is on.
    pub tls: Option<Arc<ServerConfig>>,
    /// user → bcrypt hash; empty means no authentication.
    pub users: BTreeMap<String, String>,
    /// Extra response headers.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Checked for unknown users (same cost as the users' hashes).
    dummy_hash: String,
}

impl WebConfig {
    fn dummy_hash(&self) -> &str {
        if self.dummy_hash.is_empty() {
            FALLBACK_DUMMY_HASH
        } else {
            &self.dummy_hash
        }
    }
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl WebConfig {
    /// Parses the YAML text of a web config file whose relative paths resolve against `base`.
    pub fn parse(text: &str, base: &Path) -> anyhow::Result<Self> {
        let file: File = if text.trim().is_empty() {
            File::default()
        } else {
            serde_yaml_ng::from_str(text).context("parsing web config")?
        };
        for (user, hash) in &file.basic_auth_users {
            if !(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) {
                bail!("basic_auth_users.{user}: not a bcrypt hash");
            }
        }
        let mut headers = Vec::new();
        if let Some(h) = &file.http_server_config {
            for (k, v) in &h.headers {
                headers.push((
                    http::HeaderName::try_from(k.as_str()).context("bad header name")?,
                    http::HeaderValue::try_from(v.as_str()).context("bad header value")?,
                ));
            }
        }
        let tls = match file.tls_server_config {
            None => None,
            Some(t) => Some(Arc::new(build_tls(&t, base)?)),
        };
        let dummy_hash = if file.basic_auth_users.is_empty() {
            String::new()
        } else {
            dummy_hash_for(&file.basic_auth_users)
        };
        Ok(Self {
            tls,
            users: file.basic_auth_users,
            headers,
            dummy_hash,
        })
    }
}

fn build_tls(t: &FileTls, base: &Path) -> anyhow::Result<ServerConfig> {
    if t.client_allowed_sans.is_some() {
        // Silently ignoring an allow-list would let in clients it was meant to keep out.
        bail!("tls_server_config.client_allowed_sans is not supported");
    }
    if t.cipher_suites.is_some()
        || t.curve_preferences.is_some()
        || t.prefer_server_cipher_suites.is_some()
    {
        tracing::warn!("cipher_suites, curve_preferences and prefer_server_cipher_suites are ignored: rustls only offers safe choices");
    }
    let certs: Vec<CertificateDer<'static>> = match (&t.cert_file, &t.cert) {
        (Some(f), _) => {
            let p = resolve(base, f);
            CertificateDer::pem_file_iter(&p)
                .with_context(|| format!("reading cert_file {}", p.display()))?
                .collect::<Result<_, _>>()
                .with_context(|| format!("parsing cert_file {}", p.display()))?
        }
        (None, Some(pem)) => CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .context("parsing cert")?,
        (None, None) => bail!("tls_server_config: cert_file is required"),
    };
    if certs.is_empty() {
        bail!("tls_server_config: no certificate found");
    }
    let key: PrivateKeyDer<'static> = match (&t.key_file, &t.key) {
        (Some(f), _) => {
            let p = resolve(base, f);
            PrivateKeyDer::from_pem_file(&p)
                .with_context(|| format!("reading key_file {}", p.display()))?
        }
        (None, Some(pem)) => {
            PrivateKeyDer::from_pem_slice(pem.as_bytes()).context("parsing key")?
        }
        (None, None) => bail!("tls_server_config: key_file is required"),
    };
    let version = |v: &Option<String>| -> anyhow::Result<Option<u8>> {
        Ok(match v.as_deref() {
            None | Some("") => None,
            Some("TLS10") | Some("TLS11") | Some("TLS12") => Some(12),
            Some("TLS13") => Some(13),
            Some(other) => bail!("unknown TLS version {other:?} (TLS12 or TLS13)"),
        })
    };
    let min = version(&t.min_version)?.unwrap_or(12);
    let max = version(&t.max_version)?.unwrap_or(13);
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if min <= 12 && max >= 12 {
        versions.push(&rustls::version::TLS12);
    }
    if max >= 13 {
        versions.push(&rustls::version::TLS13);
    }
    if versions.is_empty() {
        bail!("tls_server_config: min_version is above max_version");
    }
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions)
        .context("TLS versions")?;
    let auth = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let roots = || -> anyhow::Result<Arc<rustls::RootCertStore>> {
        let f = t
            .client_ca_file
            .as_ref()
            .with_context(|| format!("client_auth_type {auth} needs client_ca_file"))?;
        let p = resolve(base, f);
        let mut store = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&p)
            .with_context(|| format!("reading client_ca_file {}", p.display()))?
        {
            store.add(c.context("parsing client_ca_file")?)?;
        }
        Ok(Arc::new(store))
    };
    let builder = match auth {
        "" | "NoClientCert" => builder.with_no_client_auth(),
        "RequireAndVerifyClientCert" => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(roots()?, provider())
                .build()
                .context("client verifier")?,
        ),
        "VerifyClientCertIfGiven" => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(roots()?, provider())
                .allow_unauthenticated()
                .build()
                .context("client verifier")?,
        ),
        // As in Go's crypto/tls: a certificate is requested (and, for RequireAny, required)
        // but its chain is not verified; the client must still prove it holds the key.
        "RequestClientCert" => builder.with_client_cert_verifier(Arc::new(AnyClientCert {
            mandatory: false,
            provider: provider(),
        })),
        "RequireAnyClientCert" => builder.with_client_cert_verifier(Arc::new(AnyClientCert {
            mandatory: true,
            provider: provider(),
        })),
        other => bail!(
            "unknown client_auth_type {other:?} (NoClientCert, RequestClientCert, \
             RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert)"
        ),
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// A client certificate verifier that accepts any certificate chain (exporter-toolkit's
/// `RequestClientCert` / `RequireAnyClientCert`), while still checking the handshake
/// signature made with the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::server::danger::ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Holds the current [`WebConfig`] and reloads it when the file changes.
pub struct WebConfigHolder {
    path: Option<PathBuf>,
    current: ArcSwap<WebConfig>,
    stamp: Mutex<Option<(SystemTime, u64)>>,
    /// Keys (SHA-256 of user, password and hash) of credentials bcrypt accepted; bounded.
    verified: Mutex<VecDeque<[u8; 32]>>,
    /// Serialises bcrypt: one verification at a time, whoever asks.
    bcrypt_lock: Mutex<()>,
    /// Async callers wait here (without holding a blocking thread) for their turn.
    bcrypt_gate: Arc<tokio::sync::Semaphore>,
    bcrypt_runs: std::sync::atomic::AtomicU64,
    #[cfg(test)]
    verify_hook: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
}

fn stamp_of(p: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn load(path: &Path) -> anyhow::Result<WebConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading web config {}", path.display()))?;
    WebConfig::parse(&text, path.parent().unwrap_or(Path::new(".")))
        .with_context(|| format!("web config {}", path.display()))
}

impl WebConfigHolder {
    /// Loads `path` (or no config: plain HTTP, no auth). Fails if the file is invalid.
    pub fn new(path: Option<PathBuf>) -> anyhow::Result<Self> {
        // An empty path (`--web.config.file=`) is no web config, as in exporter-toolkit.
        let path = path.filter(|p| !p.as_os_str().is_empty());
        let (cfg, stamp) = match &path {
            None => (WebConfig::default(), None),
            Some(p) => (load(p)?, stamp_of(p)),
        };
        Ok(Self {
            path,
            current: ArcSwap::from_pointee(cfg),
            stamp: Mutex::new(stamp),
            verified: Mutex::new(VecDeque::new()),
            bcrypt_lock: Mutex::new(()),
            bcrypt_gate: Arc::new(tokio::sync::Semaphore::new(1)),
            bcrypt_runs: Default::default(),
            #[cfg(test)]
            verify_hook: Mutex::new(None),
        })
    }

    /// The configuration in force, re-read first if the file changed.
    pub fn current(&self) -> Arc<WebConfig> {
        if let Some(p) = &self.path {
            let now = stamp_of(p);
            let mut stamp = self.stamp.lock().expect("stamp lock");
            if now.is_some() && now != *stamp {
                *stamp = now;
                match load(p) {
                    Ok(cfg) => {
                        tracing::info!(path = %p.display(), "web config reloaded");
                        self.current.store(Arc::new(cfg));
                        self.verified.lock().expect("cache lock").clear();
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "web config not reloaded; keeping the previous one")
                    }
                }
            }
        }
        self.current.load_full()
    }

    /// Checks an `Authorization` header against the users. `Ok(None)` if no auth is set up,
    /// `Ok(Some(user))` if it passed, `Err(Unauthorized)` if the request must get 401.
    ///
    /// This blocks for a bcrypt verification when the credentials are not cached; async
    /// code should use [`authorize_async`](Self::authorize_async).
    pub fn authorize(
        &self,
        cfg: &WebConfig,
        header: Option<&str>,
    ) -> Result<Option<String>, Unauthorized> {
        match self.precheck(cfg, header) {
            Check::Done(r) => r,
            Check::Verify(v) => {
                let ok = self.run_bcrypt(&v.pass, &v.hash);
                self.finish(v, ok)
            }
        }
    }

    /// Like [`authorize`](Self::authorize), but bcrypt runs on a blocking thread, one
    /// verification at a time, so that wrong passwords cannot stall the async workers or
    /// the scrapes whose credentials are cached.
    pub async fn authorize_async(
        self: &Arc<Self>,
        cfg: &WebConfig,
        header: Option<&str>,
    ) -> Result<Option<String>, Unauthorized> {
        let v = match self.precheck(cfg, header) {
            Check::Done(r) => return r,
            Check::Verify(v) => v,
        };
        let Ok(_turn) = self.bcrypt_gate.clone().acquire_owned().await else {
            return Err(Unauthorized);
        };
        let me = self.clone();
        let (pass, hash) = (v.pass.clone(), v.hash.clone());
        let ok = tokio::task::spawn_blocking(move || me.run_bcrypt(&pass, &hash))
            .await
            .unwrap_or(false);
        self.finish(v, ok)
    }

    /// How many bcrypt verifications this holder has run (cache hits run none).
    #[doc(hidden)]
    pub fn bcrypt_verifications(&self) -> u64 {
        self.bcrypt_runs.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn precheck(&self, cfg: &WebConfig, header: Option<&str>) -> Check {
        if cfg.users.is_empty() {
            return Check::Done(Ok(None));
        }
        let Some((user, pass)) = header.and_then(parse_basic) else {
            return Check::Done(Err(Unauthorized));
        };
        // An unknown user is checked against a dummy hash of the same cost, so that the
        // answer takes as long as for a known user with a wrong password.
        let (hash, known) = match cfg.users.get(&user) {
            Some(h) => (h.clone(), true),
            None => (cfg.dummy_hash().to_string(), false),
        };
        let mut h = Sha256::new();
        h.update(user.as_bytes());
        h.update([0]);
        h.update(pass.as_bytes());
        h.update([0]);
        h.update(hash.as_bytes());
        let key: [u8; 32] = h.finalize().into();
        if known && cache_contains(&self.verified.lock().expect("cache lock"), &key) {
            return Check::Done(Ok(Some(user)));
        }
        Check::Verify(Pending {
            user,
            pass,
            hash,
            known,
            key,
        })
    }

    fn run_bcrypt(&self, pass: &str, hash: &str) -> bool {
        let _one_at_a_time = self.bcrypt_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.bcrypt_runs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        #[cfg(test)]
        if let Some(hook) = self.verify_hook.lock().unwrap().clone() {
            hook();
        }
        bcrypt::verify(pass, hash).unwrap_or(false)
    }

    fn finish(&self, v: Pending, ok: bool) -> Result<Option<String>, Unauthorized> {
        if !(ok && v.known) {
            return Err(Unauthorized);
        }
        // bcrypt is deliberately slow; successful checks are cached (by a hash, never the
        // password itself) so that a scrape every few seconds does not pay for it each time.
        let mut c = self.verified.lock().expect("cache lock");
        if !cache_contains(&c, &v.key) {
            if c.len() >= VERIFIED_CACHE_SIZE {
                c.pop_front();
            }
            c.push_back(v.key);
        }
        Ok(Some(v.user))
    }
}

/// How many verified credentials are remembered (oldest forgotten first).
const VERIFIED_CACHE_SIZE: usize = 256;

/// A fixed bcrypt hash (cost 10) of a random password, for unknown users when no user's
/// cost is known.
const FALLBACK_DUMMY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// A dummy hash with the cost of the configured users' hashes (the highest one).
fn dummy_hash_for(users: &BTreeMap<String, String>) -> String {
    let cost = users
        .values()
        .filter_map(|h| h.get(4..6)?.parse::<u32>().ok())
        .max();
    match cost {
        Some(c) if (4..=31).contains(&c) => bcrypt::hash("hpcmon dummy password", c)
            .unwrap_or_else(|_| FALLBACK_DUMMY_HASH.to_string()),
        _ => FALLBACK_DUMMY_HASH.to_string(),
    }
}

/// Whether `key` is in the cache, comparing every entry in constant time.
fn cache_contains(cache: &VecDeque<[u8; 32]>, key: &[u8; 32]) -> bool {
    let mut found = 0u8;
    for k in cache {
        let mut diff = 0u8;
        for (a, b) in k.iter().zip(key) {
            diff |= a ^ b;
        }
        found |= u8::from(std::hint::black_box(diff) == 0);
    }
    found != 0
}

enum Check {
    Done(Result<Option<String>, Unauthorized>),
    Verify(Pending),
}

struct Pending {
    user: String,
    pass: String,
    hash: String,
    known: bool,
    key: [u8; 32],
}

/// The request's credentials are missing or wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized;

fn parse_basic(header: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let b64 = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(u: &str, p: &str) -> String {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    }

    #[test]
    fn basic_auth_accepts_right_and_rejects_wrong() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.yml");
        std::fs::write(&p, format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
        let h = WebConfigHolder::new(Some(p.clone())).unwrap();
        let cfg = h.current();
        assert_eq!(
            h.authorize(&cfg, Some(&basic("alice", "s3cret"))),
            Ok(Some("alice".into()))
        );
        // cached path
        assert_eq!(
            h.authorize(&cfg, Some(&basic("alice", "s3cret"))),
            Ok(Some("alice".into()))
        );
        assert_eq!(
            h.authorize(&cfg, Some(&basic("alice", "wrong"))),
            Err(Unauthorized)
        );
        assert_eq!(
            h.authorize(&cfg, Some(&basic("bob", "s3cret"))),
            Err(Unauthorized)
        );
        assert_eq!(h.authorize(&cfg, None), Err(Unauthorized));
        assert_eq!(h.authorize(&cfg, Some("Bearer x")), Err(Unauthorized));

        // The file is re-read when it changes: a new password applies without restart.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let hash2 = bcrypt::hash("n3w", 4).unwrap();
        std::fs::write(&p, format!("basic_auth_users:\n  alice: '{hash2}'  \n")).unwrap();
        let cfg = h.current();
        assert_eq!(
            h.authorize(&cfg, Some(&basic("alice", "s3cret"))),
            Err(Unauthorized)
        );
        assert!(h.authorize(&cfg, Some(&basic("alice", "n3w"))).is_ok());

        // A broken file keeps the previous config.
        std::fs::write(&p, "basic_auth_users: [this is: not a map").unwrap();
        let cfg = h.current();
        assert!(h.authorize(&cfg, Some(&basic("alice", "n3w"))).is_ok());
    }

    fn holder_with_alice() -> (tempfile::TempDir, Arc<WebConfigHolder>) {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.yml");
        std::fs::write(&p, format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
        let h = Arc::new(WebConfigHolder::new(Some(p)).unwrap());
        (dir, h)
    }

    #[test]
    fn unknown_users_pay_for_a_bcrypt_check_like_known_ones() {
        let (_d, h) = holder_with_alice();
        let cfg = h.current();
        let n = || h.bcrypt_verifications();
        let before = n();
        assert_eq!(
            h.authorize(&cfg, Some(&basic("bob", "x"))),
            Err(Unauthorized)
        );
        assert_eq!(n(), before + 1, "unknown user rejected without hashing");
        assert_eq!(
            h.authorize(&cfg, Some(&basic("alice", "x"))),
            Err(Unauthorized)
        );
        assert_eq!(n(), before + 2);
        assert!(h.authorize(&cfg, Some(&basic("alice", "s3cret"))).is_ok());
        assert_eq!(n(), before + 3);
        assert!(h.authorize(&cfg, Some(&basic("alice", "s3cret"))).is_ok());
        assert_eq!(n(), before + 3, "a verified credential is cached");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            assert_eq!(
                h.authorize_async(&cfg, Some(&basic("carol", "x"))).await,
                Err(Unauthorized)
            );
            assert_eq!(
                n(),
                before + 4,
                "unknown user rejected without hashing (async)"
            );
            assert!(h
                .authorize_async(&cfg, Some(&basic("alice", "s3cret")))
                .await
                .is_ok());
            assert_eq!(n(), before + 4);
        });
    }

    #[test]
    fn bcrypt_does_not_block_the_async_workers() {
        // The verification is held until another task on the same (single-threaded)
        // runtime releases it: that can only happen if bcrypt runs off the runtime thread.
        let (_d, h) = holder_with_alice();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let released = released.clone();
            *h.verify_hook.lock().unwrap() = Some(Arc::new(move || {
                let ok = release_rx
                    .lock()
                    .unwrap()
                    .recv_timeout(std::time::Duration::from_secs(5))
                    .is_ok();
                released.store(ok, std::sync::atomic::Ordering::SeqCst);
            }));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let cfg = h.current();
            let h2 = h.clone();
            let auth = tokio::spawn(async move {
                h2.authorize_async(&cfg, Some(&basic("alice", "wrong")))
                    .await
            });
            // Another task makes progress while the verification is in flight.
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let _ = release_tx.send(());
            assert_eq!(auth.await.unwrap(), Err(Unauthorized));
        });
        assert!(
            released.load(std::sync::atomic::Ordering::SeqCst),
            "bcrypt blocked the runtime thread: no other task could run meanwhile"
        );
    }

    #[test]
    fn rejects_plaintext_passwords_and_unknown_keys() {
        assert!(WebConfig::parse("basic_auth_users:\n  a: plain\n", Path::new(".")).is_err());
        assert!(WebConfig::parse("tls_server_confg: {}\n", Path::new(".")).is_err());
        assert!(WebConfig::parse("", Path::new("."))
            .unwrap()
            .users
            .is_empty());
    }

    #[test]
    fn tls_requires_cert_and_key() {
        let e = WebConfig::parse("tls_server_config: {}\n", Path::new(".")).unwrap_err();
        assert!(format!("{e:#}").contains("cert_file"), "{e:#}");
    }
}
