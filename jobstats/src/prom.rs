//! A small client of the Prometheus HTTP query API (`/api/v1/query`), which Prometheus and
//! VictoriaMetrics both serve. Every request has a deadline; basic auth or a bearer token is
//! read from a file (never from argv); TLS is verified against the system roots or a CA file.
//! The client counts the queries it sends so the report's cost can be measured.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

/// How to reach the Prometheus API.
#[derive(Debug, Clone, clap::Args)]
pub struct PromFlags {
    /// Base URL of the Prometheus (or VictoriaMetrics) HTTP API.
    #[arg(
        long = "prometheus.url",
        global = true,
        env = "HPCMON_JOBSTATS_PROMETHEUS_URL",
        default_value = "http://127.0.0.1:9090"
    )]
    pub url: String,
    /// Deadline of each query.
    #[arg(long = "prometheus.timeout", global = true, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Basic-auth user name.
    #[arg(
        long = "prometheus.username",
        global = true,
        env = "HPCMON_JOBSTATS_PROMETHEUS_USERNAME"
    )]
    pub username: Option<String>,
    /// File holding the basic-auth password.
    #[arg(long = "prometheus.password-file", global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// File holding a bearer token.
    #[arg(
        long = "prometheus.bearer-token-file",
        global = true,
        value_name = "FILE"
    )]
    pub bearer_token_file: Option<PathBuf>,
    /// PEM file of the CA that signed the server's certificate (default: system roots).
    #[arg(long = "prometheus.ca-file", global = true, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    hpcmon_kit::duration::parse(s).map_err(|e| e.to_string())
}

/// A failed query.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    /// Bad configuration (unreadable secret file, bad CA, bad URL).
    #[error("prometheus client: {0}")]
    Config(String),
    /// The server did not answer in time.
    #[error("prometheus at {url} did not answer within {timeout:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The server could not be reached.
    #[error("cannot reach prometheus at {url}: {error}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        error: String,
    },
    /// The server answered with an error.
    #[error("prometheus at {url} answered {status}: {error}")]
    Api {
        /// The URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// Its error text.
        error: String,
    },
}

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// A label's value ("" when absent).
    pub fn label(&self, k: &str) -> &str {
        self.labels.get(k).map(String::as_str).unwrap_or("")
    }
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
}

#[derive(Deserialize)]
struct ApiData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// The client.
#[derive(Clone)]
pub struct Prom {
    url: String,
    timeout: Duration,
    http: reqwest::Client,
    queries: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Prom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prom").field("url", &self.url).finish()
    }
}

fn read_secret(path: &PathBuf) -> Result<String, PromError> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| PromError::Config(format!("cannot read {}: {e}", path.display())))?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}

impl Prom {
    /// A client for `flags` (reads the secret files now).
    pub fn new(flags: &PromFlags) -> Result<Self, PromError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = flags.url.trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(PromError::Config(format!(
                "--prometheus.url must start with http:// or https://, got {url:?}"
            )));
        }
        let mut b = reqwest::Client::builder()
            .timeout(flags.timeout)
            .connect_timeout(flags.timeout)
            .no_proxy();
        if let Some(ca) = &flags.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| PromError::Config(format!("cannot read {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| PromError::Config(format!("{}: {e}", ca.display())))?;
            if certs.is_empty() {
                return Err(PromError::Config(format!(
                    "{}: no certificate in the file",
                    ca.display()
                )));
            }
            b = b.tls_certs_only(certs);
        }
        let mut headers = reqwest::header::HeaderMap::new();
        let auth = match (
            &flags.username,
            &flags.password_file,
            &flags.bearer_token_file,
        ) {
            (_, _, Some(t)) => Some(format!("Bearer {}", read_secret(t)?)),
            (Some(u), p, None) => {
                use base64::Engine;
                let pw = match p {
                    Some(p) => read_secret(p)?,
                    None => {
                        std::env::var("HPCMON_JOBSTATS_PROMETHEUS_PASSWORD").unwrap_or_default()
                    }
                };
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{pw}"))
                ))
            }
            _ => None,
        };
        if let Some(a) = auth {
            let mut v = reqwest::header::HeaderValue::from_str(&a).map_err(|_| {
                PromError::Config("credentials hold characters not allowed in a header".into())
            })?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let http = b
            .default_headers(headers)
            .build()
            .map_err(|e| PromError::Config(e.to_string()))?;
        Ok(Self {
            url,
            timeout: flags.timeout,
            http,
            queries: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Queries sent so far.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }

    /// Evaluates `query` as an instant vector at `time` (unix seconds; now when `None`).
    pub async fn instant(&self, query: &str, time: Option<i64>) -> Result<Vec<Sample>, PromError> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let endpoint = format!("{}/api/v1/query", self.url);
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("query", query);
            if let Some(t) = time {
                form.append_pair("time", &t.to_string());
            }
            form.finish()
        };
        let resp = self
            .http
            .post(&endpoint)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| self.transport_error(e))?;
        let parsed: Result<ApiResponse, _> = serde_json::from_slice(&body);
        let api = match parsed {
            Ok(a) => a,
            Err(_) => {
                let text = String::from_utf8_lossy(&body[..body.len().min(200)]).to_string();
                return Err(PromError::Api {
                    url: self.url.clone(),
                    status,
                    error: format!("not a Prometheus API answer: {text:?}"),
                });
            }
        };
        if api.status != "success" {
            return Err(PromError::Api {
                url: self.url.clone(),
                status,
                error: format!(
                    "{}: {}",
                    api.error_type.unwrap_or_default(),
                    api.error.unwrap_or_default()
                ),
            });
        }
        let data = api.data.ok_or_else(|| PromError::Api {
            url: self.url.clone(),
            status,
            error: "answer without data".into(),
        })?;
        if data.result_type != "vector" {
            return Err(PromError::Api {
                url: self.url.clone(),
                status,
                error: format!("expected a vector, got {}", data.result_type),
            });
        }
        let items: Vec<VectorItem> =
            serde_json::from_value(data.result).map_err(|e| PromError::Api {
                url: self.url.clone(),
                status,
                error: format!("malformed vector: {e}"),
            })?;
        Ok(items
            .into_iter()
            .filter_map(|i| {
                let v: f64 = i.value.1.parse().ok()?;
                v.is_finite().then_some(Sample {
                    labels: i.metric,
                    value: v,
                })
            })
            .collect())
    }

    fn transport_error(&self, e: reqwest::Error) -> PromError {
        if e.is_timeout() {
            PromError::Timeout {
                url: self.url.clone(),
                timeout: self.timeout,
            }
        } else {
            // The source chain says why (connection refused, TLS, DNS).
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            PromError::Unreachable {
                url: self.url.clone(),
                error: msg,
            }
        }
    }
}

/// Quotes `s` as a PromQL string literal (label values come from users: job names, ids).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("123"), "\"123\"");
        assert_eq!(quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }

    fn flags(url: &str) -> PromFlags {
        PromFlags {
            url: url.into(),
            timeout: Duration::from_millis(500),
            username: None,
            password_file: None,
            bearer_token_file: None,
            ca_file: None,
        }
    }

    #[test]
    fn bad_config_is_a_clear_error() {
        let e = Prom::new(&flags("127.0.0.1:9090")).unwrap_err();
        assert!(e.to_string().contains("must start with http"), "{e}");
        let mut f = flags("http://127.0.0.1:1");
        f.bearer_token_file = Some("/nonexistent/token".into());
        let e = Prom::new(&f).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/token"), "{e}");
    }

    #[tokio::test]
    async fn unreachable_and_slow_servers() {
        // A port nobody listens on.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let p = Prom::new(&flags(&format!("http://127.0.0.1:{port}"))).unwrap();
        let e = p.instant("up", None).await.unwrap_err();
        assert!(matches!(e, PromError::Unreachable { .. }), "{e}");
        // A server that accepts and never answers: the deadline holds.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let hold = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                conns.push(s);
            }
        });
        let p = Prom::new(&flags(&format!("http://127.0.0.1:{port}"))).unwrap();
        let e = p.instant("up", None).await.unwrap_err();
        assert!(matches!(e, PromError::Timeout { .. }), "{e}");
        assert_eq!(p.queries(), 1);
        hold.abort();
    }
}
