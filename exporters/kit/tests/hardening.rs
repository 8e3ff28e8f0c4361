//! Hostile-input and shutdown behaviour of the kit's server (issue 13).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use hpcmon_kit::server::{serve_listeners, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Starts a server on its own runtime in its own thread, as `main` does; after `serve`
/// returns the runtime is shut down without waiting (as the process exit would).
/// Returns the address, the shutdown trigger and a receiver told when serve returned.
fn start(
    router: Router,
    opts: ServerOptions,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    std::sync::mpsc::Receiver<()>,
) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let r = rt.block_on(async move {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(l.local_addr().unwrap()).unwrap();
            serve_listeners(
                vec![l],
                None,
                router,
                Router::new(),
                async move {
                    let _ = stop_rx.await;
                },
                opts,
            )
            .await
        });
        r.unwrap();
        rt.shutdown_background();
        let _ = done_tx.send(());
    });
    (addr_rx.recv().unwrap(), stop_tx, done_rx)
}

/// Reads until EOF or error; `None` if the connection stayed open for `within`.
async fn read_to_close(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut buf = Vec::new();
    match tokio::time::timeout(within, s.read_to_end(&mut buf)).await {
        Ok(_) => Some(String::from_utf8_lossy(&buf).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn half_sent_request_is_closed_after_header_read_timeout() {
    let opts = ServerOptions {
        header_read_timeout: Duration::from_millis(300),
        ..ServerOptions::default()
    };
    let (addr, _stop, _done) = start(Router::new().route("/", get(|| async { "hi" })), opts);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    assert!(
        read_to_close(&mut s, Duration::from_secs(5))
            .await
            .is_some(),
        "half-sent request kept its connection open"
    );
}

#[tokio::test]
async fn connection_that_sends_nothing_is_closed_after_header_read_timeout() {
    // hyper-util's auto builder waited for a first byte (to tell HTTP/1 from HTTP/2) with no
    // timeout, before hyper's header-read timer started: such connections stayed forever.
    let opts = ServerOptions {
        header_read_timeout: Duration::from_millis(300),
        ..ServerOptions::default()
    };
    let (addr, _stop, _done) = start(Router::new().route("/", get(|| async { "hi" })), opts);
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert!(
        read_to_close(&mut s, Duration::from_secs(5))
            .await
            .is_some(),
        "a connection that sent nothing was kept open"
    );
}

#[tokio::test]
async fn idle_keepalive_connection_is_closed() {
    let opts = ServerOptions {
        header_read_timeout: Duration::from_millis(300),
        ..ServerOptions::default()
    };
    let (addr, _stop, _done) = start(Router::new().route("/", get(|| async { "hi" })), opts);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut s, Duration::from_secs(5))
        .await
        .expect("idle keep-alive connection kept open");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
}

#[tokio::test]
async fn at_the_connection_cap_a_new_client_replaces_the_oldest_idle_one() {
    // Two connections that never finish their request head fill the cap; a scraper must
    // still get in (it used to be closed at once, locked out by any idle flood).
    let opts = ServerOptions {
        max_connections: 2,
        ..ServerOptions::default()
    };
    let (addr, _stop, _done) = start(Router::new().route("/", get(|| async { "hi" })), opts);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        held.push(s);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut s, Duration::from_secs(5))
        .await
        .expect("the scraper's connection was kept open without an answer");
    assert!(got.starts_with("HTTP/1.1 200"), "scraper got {got:?}");
    // The oldest idle connection made room; the younger one is still open.
    assert!(
        read_to_close(&mut held[0], Duration::from_secs(5))
            .await
            .is_some(),
        "the oldest idle connection was not closed"
    );
    assert!(
        read_to_close(&mut held[1], Duration::from_millis(300))
            .await
            .is_none(),
        "the younger idle connection was closed too"
    );
}

#[tokio::test]
async fn at_the_connection_cap_busy_connections_are_kept_and_new_ones_closed() {
    let opts = ServerOptions {
        max_connections: 2,
        ..ServerOptions::default()
    };
    let router = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            "done"
        }),
    );
    let (addr, _stop, _done) = start(router, opts);
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        busy.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut third = TcpStream::connect(addr).await.unwrap();
    let got = read_to_close(&mut third, Duration::from_secs(3))
        .await
        .expect("a connection beyond the cap of busy ones was kept open");
    assert!(got.is_empty(), "{got:?}");
    for mut s in busy {
        let got = read_to_close(&mut s, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(
            got.starts_with("HTTP/1.1 200") && got.ends_with("done"),
            "a request in flight was cut to make room: {got:?}"
        );
    }
}

#[tokio::test]
async fn a_request_head_over_the_limit_gets_431_even_when_sent_unfinished() {
    // The head limit bounds what an unfinished head makes the server buffer (hyper's
    // default was ~400 KiB per connection).
    let (addr, _stop, _done) = start(
        Router::new().route("/", get(|| async { "hi" })),
        ServerOptions::default(),
    );
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    head.resize(hpcmon_kit::server::MAX_REQUEST_HEAD_BYTES + 4096, b'a');
    let _ = s.write_all(&head).await;
    let got = read_to_close(&mut s, Duration::from_secs(5))
        .await
        .expect("an unfinished head over the limit kept its connection open");
    assert!(got.starts_with("HTTP/1.1 431"), "{got:?}");
    // Complete heads over the limit, whatever the reads that deliver them.
    for size in [
        hpcmon_kit::server::MAX_REQUEST_HEAD_BYTES + 100,
        hpcmon_kit::server::MAX_REQUEST_HEAD_BYTES + 12 * 1024,
    ] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        head.resize(size, b'a');
        head.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        let _ = s.write_all(&head).await;
        let got = read_to_close(&mut s, Duration::from_secs(5)).await.unwrap();
        assert!(got.starts_with("HTTP/1.1 431"), "{size} bytes: {got:?}");
    }
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut ok = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
    ok.resize(hpcmon_kit::server::MAX_REQUEST_HEAD_BYTES / 2, b'a');
    ok.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    s.write_all(&ok).await.unwrap();
    let got = read_to_close(&mut s, Duration::from_secs(5)).await.unwrap();
    assert!(got.starts_with("HTTP/1.1 200"), "{got:?}");
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let router = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            "done"
        }),
    );
    let (addr, stop, done) = start(router, ServerOptions::default());
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    let got = read_to_close(&mut s, Duration::from_secs(10))
        .await
        .expect("connection not closed after shutdown");
    assert!(
        got.starts_with("HTTP/1.1 200") && got.ends_with("done"),
        "in-flight request dropped at shutdown: {got:?}"
    );
    done.recv_timeout(Duration::from_secs(10))
        .expect("serve did not return");
}

#[tokio::test]
async fn shutdown_is_bounded_when_a_handler_is_stuck() {
    let router = Router::new().route(
        "/stuck",
        get(|| async {
            let _ =
                tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_secs(60))).await;
            "never"
        }),
    );
    let opts = ServerOptions {
        shutdown_grace: Duration::from_millis(500),
        ..ServerOptions::default()
    };
    let (addr, stop, done) = start(router, opts);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    done.recv_timeout(Duration::from_secs(10))
        .expect("serve kept running past the shutdown bound");
}

// ---- TLS client_auth_type ----

/// Whether the server accepts a handshake from a client presenting `client` (name of a
/// cert/key pair in `dir`) or no certificate.
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    dir: &Path,
    client: Option<&str>,
) -> Result<(), String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("ca.crt")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match client {
        None => b.with_no_client_auth(),
        Some(name) => {
            let certs: Vec<_> = CertificateDer::pem_file_iter(dir.join(format!("{name}.crt")))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(dir.join(format!("{name}.key"))).unwrap();
            b.with_client_auth_cert(certs, key).unwrap()
        }
    };
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let srv = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut tls = tokio_rustls::TlsAcceptor::from(server)
            .accept(s)
            .await
            .map_err(|e| e.to_string())?;
        let mut b = [0u8; 1];
        tls.read_exact(&mut b).await.map_err(|e| e.to_string())?;
        tls.write_all(b"y").await.map_err(|e| e.to_string())?;
        tls.shutdown().await.map_err(|e| e.to_string())
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let conn = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await;
    if let Ok(mut c) = conn {
        let _ = c.write_all(b"x").await;
        let mut b = [0u8; 1];
        let _ = c.read_exact(&mut b).await;
    }
    tokio::time::timeout(Duration::from_secs(10), srv)
        .await
        .expect("server side hung")
        .unwrap()
}

fn tls_config(dir: &Path, auth: &str, with_ca: bool) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let ca = if with_ca {
        "  client_ca_file: ca.crt\n"
    } else {
        ""
    };
    let yaml = format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: {auth}\n{ca}"
    );
    Ok(hpcmon_kit::webconfig::WebConfig::parse(&yaml, dir)?
        .tls
        .expect("tls"))
}

#[tokio::test]
async fn every_exporter_toolkit_client_auth_type() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    // ca.crt, server.{crt,key} (SAN 127.0.0.1), client.{crt,key} signed by the CA, and the
    // self-signed stranger.{crt,key}: the harness' test PKI.
    hpcmon_e2e::Pki::create(dir).await.unwrap();

    let no = tls_config(dir, "NoClientCert", false).unwrap();
    assert!(handshake(no.clone(), dir, None).await.is_ok());

    // RequestClientCert: asks for one, accepts any, or none.
    let req = tls_config(dir, "RequestClientCert", false).expect("RequestClientCert refused");
    assert_eq!(handshake(req.clone(), dir, None).await, Ok(()));
    assert_eq!(handshake(req.clone(), dir, Some("stranger")).await, Ok(()));
    assert_eq!(handshake(req, dir, Some("client")).await, Ok(()));

    // RequireAnyClientCert: any certificate, but one is required.
    let any = tls_config(dir, "RequireAnyClientCert", false).expect("RequireAnyClientCert refused");
    assert!(handshake(any.clone(), dir, None).await.is_err());
    assert_eq!(handshake(any.clone(), dir, Some("stranger")).await, Ok(()));
    assert_eq!(handshake(any, dir, Some("client")).await, Ok(()));

    // VerifyClientCertIfGiven: none, or one from the CA.
    let ifg = tls_config(dir, "VerifyClientCertIfGiven", true).unwrap();
    assert_eq!(handshake(ifg.clone(), dir, None).await, Ok(()));
    assert!(handshake(ifg.clone(), dir, Some("stranger")).await.is_err());
    assert_eq!(handshake(ifg, dir, Some("client")).await, Ok(()));

    // RequireAndVerifyClientCert: one from the CA.
    assert!(tls_config(dir, "RequireAndVerifyClientCert", false).is_err());
    let req_v = tls_config(dir, "RequireAndVerifyClientCert", true).unwrap();
    assert!(handshake(req_v.clone(), dir, None).await.is_err());
    assert!(handshake(req_v.clone(), dir, Some("stranger"))
        .await
        .is_err());
    assert_eq!(handshake(req_v, dir, Some("client")).await, Ok(()));

    assert!(tls_config(dir, "Bogus", true).is_err());
}

// ---- gzip ----

async fn metrics_with(accept_encoding: Option<&str>) -> (http::HeaderMap, Vec<u8>) {
    use http_body_util::BodyExt as _;
    let mut set = hpcmon_kit::MetricSet::new();
    set.gauge("demo_value", "A value.").sample(&[], 42.0);
    let mut h = http::HeaderMap::new();
    if let Some(v) = accept_encoding {
        h.insert(http::header::ACCEPT_ENCODING, v.parse().unwrap());
    }
    let r = hpcmon_kit::server::metrics_response(set, &h);
    let headers = r.headers().clone();
    let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
    (headers, body)
}

#[tokio::test]
async fn gzip_is_negotiated_from_accept_encoding() {
    use std::io::Read as _;
    for (ae, gz) in [
        (None, false),
        (Some("gzip"), true),
        (Some("GZIP"), true),
        (Some("deflate, gzip;q=1.0, *;q=0.5"), true),
        (Some("br, gzip;q=0.5"), true),
        (Some("*"), true),
        (Some("gzip;q=0"), false),
        (Some("gzip; q=0.000"), false),
        (Some("gzip;q=junk"), false),
        (Some("identity"), false),
        (Some("identity, gzip;q=0"), false),
        (Some("*;q=0, identity"), false),
        (Some("br"), false),
    ] {
        let (h, body) = metrics_with(ae).await;
        assert_eq!(
            h.get(http::header::VARY).map(|v| v.to_str().unwrap()),
            Some("Accept-Encoding"),
            "{ae:?}"
        );
        let text = if gz {
            assert_eq!(
                h.get(http::header::CONTENT_ENCODING)
                    .map(|v| v.to_str().unwrap()),
                Some("gzip"),
                "{ae:?}"
            );
            let mut s = String::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_string(&mut s)
                .unwrap();
            s
        } else {
            assert!(h.get(http::header::CONTENT_ENCODING).is_none(), "{ae:?}");
            String::from_utf8(body).unwrap()
        };
        assert!(text.contains("demo_value 42"), "{ae:?}: {text}");
    }
}
