//! Hostile input against every HTTP binary of the suite (issue 13): the node, GPU, IPMI and
//! Slurm exporters and the alert bridge, each behind a `--web.config.file` with a bcrypt user.
//!
//! Each binary gets, in turn:
//! - oversized and malformed request heads (one huge header, a head over the kit's limit,
//!   too many headers, bad names, NUL bytes, folded lines, bad methods, versions and
//!   `Content-Length`s, TLS bytes on the plain port);
//! - invalid query strings and huge `collect[]` lists (exporters), bad API parameters
//!   (bridge), refused `/ipmi` targets (IPMI);
//! - bad `Accept`, `Accept-Encoding`, scrape-timeout and `Authorization` headers;
//! - wrong passwords and unknown users from many clients at once;
//! - slow-loris connections (a request head dribbled a byte at a time, and large heads sent
//!   slowly);
//! - a flood of idle connections, several times `--web.max-connections`.
//!
//! Every hostile request must get the status documented in `exporters/kit/README.md`
//! (never a reset without an answer); during each attack a legitimate, authenticated scrape
//! on a new connection must succeed (with a generous client timeout: nothing here asserts a
//! duration); the server must never hold more client sockets than `--web.max-connections`;
//! its peak resident set (VmHWM, reset after the warm-up scrape) must stay within
//! [`MEMORY_BOUND_MIB`] of its resident set before the attacks.
//!
//! Needs `cargo build --workspace --bins` (scripts/test.sh does it). No GPU is needed: the
//! GPU exporter without NVML serves `gpu_nvml_up 0`, which is all its HTTP side needs. The
//! Slurm exporter reads the captured outputs of the real test cluster (`testdata/`) through
//! `--slurm.bin-dir` wrappers: the attacks are on its HTTP side, not on Slurm.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hpcmon_e2e::{client, repo_root, start_binary_with_client, ClientOptions, Daemon};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const USER: &str = "prometheus";
const PASSWORD: &str = "hostile suite: correct horse battery staple";
/// bcrypt cost of the test user. Low, so that the flood of wrong passwords runs quickly in a
/// debug build; the kit checks unknown users against a dummy hash of the same cost.
const BCRYPT_COST: u32 = 6;
/// `--web.header-read-timeout` given to every binary (short, so that slow-loris and idle
/// connections are cut during the test).
const HEADER_READ_TIMEOUT: &str = "2s";
/// The kit's limit on a request head (request line plus headers).
const MAX_HEAD_BYTES: usize = 32 * 1024;
/// How far the peak resident set may grow over the resident set before the attacks.
const MEMORY_BOUND_MIB: u64 = 32;
/// Client timeout of the legitimate scrape: generous; it must succeed, not be quick.
const LEGIT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a hostile request may wait for its answer (or a close) before the case fails.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Client sockets the server may hold beyond `--web.max-connections` (listener, signal
/// pipes, a connection accepted but not yet counted).
const SOCKET_SLACK: usize = 8;

/// Raises the soft open-files limit to the hard one (once) and returns it.
fn nofile_limit() -> u64 {
    static LIMIT: OnceLock<u64> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        // SAFETY: getrlimit/setrlimit only read and write the struct passed.
        unsafe {
            let mut l: libc::rlimit = std::mem::zeroed();
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut l), 0);
            if l.rlim_cur < l.rlim_max {
                let want = libc::rlimit {
                    rlim_cur: l.rlim_max.min(1 << 20),
                    rlim_max: l.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                    l.rlim_cur = want.rlim_cur;
                }
            }
            l.rlim_cur as u64
        }
    })
}

/// How many connections each attack may open, within `ulimit -n` (the five tests may run at
/// once in this process): (idle flood, `--web.max-connections`, slow-loris).
fn connection_budget() -> (usize, usize, usize) {
    let per_test = (nofile_limit().saturating_sub(512) / 5) as usize;
    let idle = per_test.min(1500);
    assert!(
        idle >= 300,
        "`ulimit -n` is {} (hard limit): too low for the idle-connection flood; raise it",
        nofile_limit()
    );
    let max_connections = (idle / 4).min(200);
    let slow = (max_connections / 2).min(60);
    (idle, max_connections, slow)
}

fn bcrypt_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| bcrypt::hash(PASSWORD, BCRYPT_COST).unwrap())
}

fn basic(user: &str, password: &str) -> String {
    let t = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {t}")
}

/// One binary under attack.
struct Target {
    name: &'static str,
    daemon: Daemon,
    addr: SocketAddr,
    /// Where a legitimate scrape goes.
    path: &'static str,
    /// A metric name every legitimate scrape shows.
    expect: &'static str,
    /// An enabled collector (for `collect[]`); `None` for the bridge.
    collector: Option<&'static str>,
    /// Whether its metrics endpoint negotiates gzip.
    gzip: bool,
    max_connections: usize,
    _dir: tempfile::TempDir,
}

impl Target {
    /// Starts `name` with a web config holding the test user, the short header-read timeout,
    /// the connection cap and `args`; `dir` holds its files and log.
    async fn start(
        name: &'static str,
        dir: tempfile::TempDir,
        args: Vec<String>,
        path: &'static str,
        expect: &'static str,
        collector: Option<&'static str>,
    ) -> Target {
        let (_, max_connections, _) = connection_budget();
        let web = dir.path().join("web.yml");
        std::fs::write(
            &web,
            format!("basic_auth_users:\n  {USER}: '{}'\n", bcrypt_hash()),
        )
        .unwrap();
        let mut all = vec![
            format!("--web.config.file={}", web.display()),
            format!("--web.header-read-timeout={HEADER_READ_TIMEOUT}"),
            format!("--web.max-connections={max_connections}"),
        ];
        all.extend(args);
        let ready = client(&ClientOptions::default().basic_auth(USER, PASSWORD)).unwrap();
        let (daemon, port) = start_binary_with_client(name, dir.path(), &all, &[], &ready).await;
        Target {
            name,
            daemon,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            path,
            expect,
            collector,
            gzip: name != "hpcmon-alert-bridge",
            max_connections,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// A scrape as Prometheus does it, on a new connection, with the right credentials.
    async fn legit_scrape(&self) -> anyhow::Result<()> {
        let c = client(&ClientOptions {
            basic_auth: Some((USER.into(), PASSWORD.into())),
            timeout: Some(LEGIT_TIMEOUT),
            ..ClientOptions::default()
        })?;
        let url = format!("http://{}{}", self.addr, self.path);
        let r = c
            .get(&url)
            .header("X-Prometheus-Scrape-Timeout-Seconds", "10")
            .send()
            .await?;
        let status = r.status();
        let body = r.text().await?;
        anyhow::ensure!(status == 200, "{url}: HTTP {status}: {body:.300}");
        anyhow::ensure!(
            body.contains(self.expect),
            "{url}: no {} in the scrape",
            self.expect
        );
        Ok(())
    }

    /// Panics with the log when the legitimate scrape fails during `what`.
    async fn assert_legit_scrape(&mut self, what: &str) {
        if let Err(e) = self.legit_scrape().await {
            panic!(
                "{}: a legitimate scrape failed during {what}: {e:#}\n{}",
                self.name,
                self.daemon.log_tail(30)
            );
        }
        self.daemon.assert_running();
    }

    /// A request head for `path` with the right credentials, `extra` header lines
    /// (each ending in CRLF) and `Connection: close`.
    fn request(&self, path: &str, extra: &str) -> Vec<u8> {
        format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n{extra}Connection: close\r\n\r\n",
            self.addr,
            basic(USER, PASSWORD)
        )
        .into_bytes()
    }

    /// Sends `req` on a new connection; the answer must have status `want`.
    async fn expect_status(&mut self, what: &str, req: &[u8], want: u16) -> Answer {
        match send_raw(self.addr, req).await {
            Ok(a) if a.status == want => a,
            Ok(a) => panic!(
                "{}: {what}: HTTP {} instead of {want}: {}\n{}",
                self.name,
                a.status,
                String::from_utf8_lossy(&a.body[..a.body.len().min(300)]),
                self.daemon.log_tail(20)
            ),
            Err(e) => panic!(
                "{}: {what}: no answer (want HTTP {want}): {e:#}\n{}",
                self.name,
                self.daemon.log_tail(20)
            ),
        }
    }

    /// Client sockets the server process holds now.
    fn sockets(&self) -> usize {
        let Ok(rd) = std::fs::read_dir(format!("/proc/{}/fd", self.pid())) else {
            return 0;
        };
        rd.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|l| l.to_string_lossy().starts_with("socket:"))
            .count()
    }

    fn assert_sockets_bounded(&self, what: &str) {
        let n = self.sockets();
        assert!(
            n <= self.max_connections + SOCKET_SLACK,
            "{}: {n} sockets open during {what}, over --web.max-connections={}",
            self.name,
            self.max_connections
        );
    }
}

/// A parsed HTTP/1.1 response.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn parse_answer(buf: &[u8]) -> anyhow::Result<Answer> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no complete response head in {} bytes: {:?}",
                buf.len(),
                String::from_utf8_lossy(&buf[..buf.len().min(200)])
            )
        })?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("bad status line {status_line:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: buf[end + 4..].to_vec(),
    })
}

/// Sends `req` on a new connection and reads the answer until the server closes it. The
/// request is written while the answer is read: a server that refuses a huge head answers
/// before it has all of it.
async fn send_raw(addr: SocketAddr, req: &[u8]) -> anyhow::Result<Answer> {
    let s = TcpStream::connect(addr).await?;
    let (mut rd, mut wr) = s.into_split();
    let req = req.to_vec();
    let writer = tokio::spawn(async move {
        // The server may close before taking it all (431): that is not an error here.
        let _ = wr.write_all(&req).await;
        wr
    });
    let mut buf = Vec::new();
    let read = tokio::time::timeout(ANSWER_TIMEOUT, async {
        let mut chunk = [0u8; 16384];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) => return Ok(()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                // A reset after the answer arrived (the server closed with our unread bytes
                // in its buffer) still counts as answered.
                Err(_) if !buf.is_empty() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    writer.abort();
    match read {
        Err(_) => anyhow::bail!("neither answered nor closed within {ANSWER_TIMEOUT:?}"),
        Ok(Err(e)) => anyhow::bail!("connection failed before any answer: {e}"),
        Ok(Ok(())) => parse_answer(&buf),
    }
}

/// Reads `/proc/PID/status` field `key` (kB).
fn status_kib(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Resets the process' peak resident set (VmHWM) to its current one.
fn reset_peak_rss(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .unwrap_or_else(|e| panic!("resetting VmHWM of {pid}: {e}"));
}

// ---------------------------------------------------------------------------------------
// The attacks.

/// Malformed and oversized request heads get 400 / 431 / 414 from the HTTP layer.
async fn malformed_heads(t: &mut Target) {
    let host = t.addr.to_string();
    let auth = basic(USER, PASSWORD);
    let path = t.path;
    let ok_head = |extra: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n{extra}Connection: close\r\n\r\n")
            .into_bytes()
    };
    // A head just under the limit is served.
    let under = format!("X-Pad: {}\r\n", "a".repeat(MAX_HEAD_BYTES / 4));
    t.expect_status("a 8 KiB header", &ok_head(&under), 200)
        .await;

    let mut cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "one 1 MiB header",
            ok_head(&format!("X-Big: {}\r\n", "b".repeat(1 << 20))),
            431,
        ),
        (
            "a head over the limit in many headers",
            ok_head(&(0..8).fold(String::new(), |mut s, i| {
                let _ = write!(s, "X-Pad-{i}: {}\r\n", "c".repeat(MAX_HEAD_BYTES / 6));
                s
            })),
            431,
        ),
        (
            "200 headers",
            ok_head(&(0..200).fold(String::new(), |mut s, i| {
                let _ = write!(s, "X-H{i}: v\r\n");
                s
            })),
            431,
        ),
        ("a header without a colon", ok_head("NoColonHere\r\n"), 400),
        ("a space in a header name", ok_head("Bad Name: x\r\n"), 400),
        ("a NUL in a header value", ok_head("X-Nul: a\0b\r\n"), 400),
        (
            "an obsolete folded header",
            ok_head("X-Fold: a\r\n  folded\r\n"),
            400,
        ),
        (
            "conflicting Content-Lengths",
            ok_head("Content-Length: 1\r\nContent-Length: 2\r\n"),
            400,
        ),
        (
            "a negative Content-Length",
            ok_head("Content-Length: -1\r\n"),
            400,
        ),
        (
            "a bad method",
            format!("G(T {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
            400,
        ),
        (
            "an unknown HTTP version",
            format!("GET {path} HTTP/9.9\r\nHost: {host}\r\n\r\n").into_bytes(),
            400,
        ),
        (
            "a request line without a version",
            format!("GET {path}\r\n\r\n").into_bytes(),
            400,
        ),
        (
            "a control byte in the path",
            format!("GET /met\x01rics HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
            400,
        ),
        (
            "a TLS ClientHello on the plain-HTTP port",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
            400,
        ),
        (
            "a 100 KiB path",
            format!(
                "GET /{} HTTP/1.1\r\nHost: {host}\r\n\r\n",
                "p".repeat(100 << 10)
            )
            .into_bytes(),
            431,
        ),
    ];
    for (what, req, want) in cases.drain(..) {
        // A URI too long for the request line's parser may get 414 before the head limit.
        if want == 431 && what.contains("path") {
            let a = send_raw(t.addr, &req).await.unwrap_or_else(|e| {
                panic!("{}: {what}: no answer: {e:#}", t.name);
            });
            assert!(
                a.status == 431 || a.status == 414,
                "{}: {what}: HTTP {}",
                t.name,
                a.status
            );
            continue;
        }
        t.expect_status(what, &req, want).await;
    }
    t.assert_legit_scrape("malformed heads").await;
}

/// Bad `Accept`, `Accept-Encoding`, scrape-timeout and `Authorization` headers.
async fn bad_headers(t: &mut Target) {
    let path = t.path;
    // Content negotiation never fails a scrape: unknown or broken values get the text format
    // and identity; gzip only when asked for with a q-value above zero.
    let accepts = [
        "Accept: ;;;,,,;q=\r\n".to_string(),
        "Accept: application/openmetrics-text; version=99.0; q=abc\r\n".to_string(),
        format!("Accept: {}\r\n", "x/y;q=0.1,".repeat(1000)),
        "Accept: \u{ff}\u{fe}/\u{fd}\r\n".to_string(),
        "Accept: */*;q=NaN\r\n".to_string(),
    ];
    for a in &accepts {
        let req = t.request(path, a);
        t.expect_status(&format!("{:.60}", a.trim()), &req, 200)
            .await;
    }
    let encodings: [(&str, bool); 11] = [
        ("gzip", true),
        ("gzip;q=1.0, identity;q=0.5", true),
        ("*", true),
        ("gzip;q=0", false),
        ("gzip;q=NaN", false),
        ("gzip;q=1e999", false),
        ("gzip;q=-1", false),
        ("br, zstd", false),
        ("identity;q=0, *;q=0", false),
        (";;;,,,=", false),
        ("gzip;q=0.5, identity", false),
    ];
    for (ae, gz) in encodings {
        let req = t.request(path, &format!("Accept-Encoding: {ae}\r\n"));
        let a = t
            .expect_status(&format!("Accept-Encoding: {ae}"), &req, 200)
            .await;
        let is_gzip = a.header("content-encoding") == Some("gzip");
        if t.gzip {
            assert_eq!(
                is_gzip,
                gz,
                "{}: Accept-Encoding: {ae} -> Content-Encoding {:?}",
                t.name,
                a.header("content-encoding")
            );
            if is_gzip {
                assert_eq!(&a.body[..2], b"\x1f\x8b", "{}: not a gzip body", t.name);
            }
        } else {
            assert!(!is_gzip || gz, "{}: gzip sent for {ae:?}", t.name);
        }
    }
    // A hostile scrape-timeout header is clamped (1e300 used to panic a worker).
    for v in [
        "1e300".to_string(),
        "-1".into(),
        "NaN".into(),
        "inf".into(),
        "0".into(),
        "9".repeat(4000),
    ] {
        let req = t.request(
            path,
            &format!("X-Prometheus-Scrape-Timeout-Seconds: {v}\r\n"),
        );
        t.expect_status(&format!("scrape timeout {v:.20}"), &req, 200)
            .await;
    }
    // Every broken or wrong Authorization gets 401.
    let host = t.addr.to_string();
    let unauthorized = [
        String::new(),
        "Authorization: Basic !!!not-base64!!!\r\n".into(),
        format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(USER)
        ),
        format!("Authorization: {}\r\n", basic(USER, &"p".repeat(10_000))),
        format!(
            "Authorization: {}\r\n",
            basic(&"u".repeat(10_000), PASSWORD)
        ),
        format!(
            "Authorization: {}\r\n",
            basic(USER, &format!("{PASSWORD}\0"))
        ),
        format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(b"\xff\xfe:\xfd")
        ),
        "Authorization: Bearer abc\r\n".into(),
        "Authorization: Digest username=\"prometheus\"\r\n".into(),
        format!(
            "Authorization: {}\r\nAuthorization: {}\r\n",
            basic(USER, "wrong"),
            basic(USER, PASSWORD)
        ),
    ];
    for a in unauthorized {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{a}Connection: close\r\n\r\n");
        let ans = t
            .expect_status(
                &format!("Authorization {:.60}", a.trim()),
                req.as_bytes(),
                401,
            )
            .await;
        assert!(
            !String::from_utf8_lossy(&ans.body).contains(t.expect),
            "{}: a 401 leaked metrics",
            t.name
        );
    }
    t.assert_legit_scrape("bad headers").await;
}

/// Query strings: huge and invalid `collect[]` lists (exporters), and unknown paths and
/// methods (everyone).
async fn bad_queries(t: &mut Target) {
    let path = t.path;
    if let Some(c) = t.collector {
        // A valid collector named thousands of times: the filter is a set.
        let many = format!("{path}?{}", format!("collect[]={c}&").repeat(1500));
        assert!(many.len() < MAX_HEAD_BYTES);
        let a = t
            .expect_status("1500 x a valid collect[]", &t.request(&many, ""), 200)
            .await;
        let body = String::from_utf8_lossy(&a.body);
        let ran: Vec<&str> = body
            .lines()
            .filter(|l| l.contains("_scrape_collector_success{"))
            .collect();
        assert!(
            !ran.is_empty()
                && ran
                    .iter()
                    .all(|l| l.contains(&format!("collector=\"{c}\""))),
            "{}: collect[]={c} ran {ran:?}",
            t.name
        );
        // As node_exporter: a filter naming anything else is a client error.
        let unknown = format!(
            "{path}?{}",
            (0..1500).fold(String::new(), |mut s, i| {
                let _ = write!(s, "collect[]=nope{i}&");
                s
            })
        );
        assert!(unknown.len() < MAX_HEAD_BYTES);
        let bad = [
            ("1500 unknown collect[] names", unknown),
            ("collect[]=%ZZ", format!("{path}?collect[]=%ZZ")),
            ("collect[]=%FF%FE", format!("{path}?collect[]=%FF%FE")),
            ("collect[] without a value", format!("{path}?collect[]")),
            ("collect[] with a NUL", format!("{path}?collect[]={c}%00")),
        ];
        for (what, p) in bad {
            let a = t.expect_status(what, &t.request(&p, ""), 400).await;
            assert!(
                a.body.len() < 4096,
                "{}: {what}: a {}-byte error echoes the request",
                t.name,
                a.body.len()
            );
        }
        t.expect_status(
            "percent-encoded collect%5B%5D",
            &t.request(&format!("{path}?collect%5B%5D={c}"), ""),
            200,
        )
        .await;
    }
    // Parameters nobody reads are ignored, however broken.
    for q in ["%", "%%%&&&===", "a=%ZZ&b=%FF", "&&&&", "x[]=1&x[]=2"] {
        let p = format!("{path}?{q}");
        t.expect_status(&format!("query {q:?}"), &t.request(&p, ""), 200)
            .await;
    }
    t.expect_status("an unknown path", &t.request("/nonesuch", ""), 404)
        .await;
    let post = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        t.addr,
        basic(USER, PASSWORD)
    );
    t.expect_status("POST to the metrics path", post.as_bytes(), 405)
        .await;
    t.assert_legit_scrape("bad queries").await;
}

/// Wrong passwords, unknown users and broken credentials from many clients at once: each
/// gets 401, and a scrape with the right (cached) credentials is served meanwhile.
async fn auth_flood(t: &mut Target) {
    const CLIENTS: usize = 24;
    const EACH: usize = 3;
    let addr = t.addr;
    let path = t.path;
    let mut set = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        set.spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..EACH {
                let auth = match (c + i) % 3 {
                    0 => basic(USER, &format!("wrong-{c}-{i}")),
                    1 => basic(&format!("intruder{c}"), PASSWORD),
                    _ => basic(&format!("root{i}"), &format!("guess{c}")),
                };
                let req = format!(
                    "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
                );
                statuses.push(send_raw(addr, req.as_bytes()).await.map(|a| a.status));
            }
            statuses
        });
    }
    // The flood is queued on bcrypt; the legitimate scrape's credentials are cached.
    tokio::time::sleep(Duration::from_millis(100)).await;
    t.assert_legit_scrape("a flood of wrong credentials").await;
    while let Some(r) = set.join_next().await {
        for s in r.unwrap() {
            match s {
                Ok(401) => {}
                Ok(other) => panic!("{}: wrong credentials got HTTP {other}", t.name),
                Err(e) => panic!(
                    "{}: wrong credentials got no answer: {e:#}\n{}",
                    t.name,
                    t.daemon.log_tail(20)
                ),
            }
        }
    }
    t.assert_legit_scrape("after the flood of wrong credentials")
        .await;
}

/// Waits until every stream in `conns` sees its connection closed by the server (EOF, a
/// reset, or an error answer followed by a close); panics after `bound`.
async fn wait_all_closed(t: &Target, what: &str, conns: Vec<TcpStream>, bound: Duration) {
    let mut set = tokio::task::JoinSet::new();
    for mut s in conns {
        set.spawn(async move {
            let mut buf = [0u8; 4096];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        });
    }
    let n = set.len();
    let all = async { while set.join_next().await.is_some() {} };
    if tokio::time::timeout(bound, all).await.is_err() {
        panic!(
            "{}: {what}: of {n} connections some were still open after {bound:?} \
             (--web.header-read-timeout={HEADER_READ_TIMEOUT})",
            t.name
        );
    }
}

/// Slow-loris: connections that send a request head a byte at a time, and connections that
/// send large heads slowly, never finishing. A legitimate scrape is served meanwhile; the
/// server cuts them after `--web.header-read-timeout`.
async fn slow_loris(t: &mut Target) {
    let (_, _, slow) = connection_budget();
    let addr = t.addr;
    let path = t.path;
    // Long enough to outlast the header-read timeout.
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..slow {
        set.spawn(async move {
            let mut s = TcpStream::connect(addr).await.ok()?;
            let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ");
            s.write_all(head.as_bytes()).await.ok()?;
            // Half dribble a byte every 100 ms; half send 24 KiB (under the head limit) in
            // 1 KiB pieces: both keep the head unfinished.
            let piece = if i % 2 == 0 { 1 } else { 1024 };
            let mut sent = 0;
            while tokio::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if sent + piece > 24 * 1024 {
                    continue;
                }
                if s.write_all(&vec![b'z'; piece]).await.is_err() {
                    // Cut by the server: what the test wants.
                    break;
                }
                sent += piece;
            }
            Some(s)
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    t.assert_legit_scrape("slow-loris connections").await;
    t.assert_sockets_bounded("slow-loris connections");
    let mut conns = Vec::new();
    while let Some(r) = set.join_next().await {
        conns.extend(r.unwrap());
    }
    assert!(
        conns.len() * 2 >= slow,
        "{}: only {} of {slow} slow-loris connections could be opened",
        t.name,
        conns.len()
    );
    wait_all_closed(t, "slow-loris", conns, Duration::from_secs(30)).await;
    t.assert_legit_scrape("after slow-loris").await;
}

/// Thousands of connections that send nothing: far over `--web.max-connections`. The
/// server holds at most the cap, a legitimate scrape still gets in, and the idle ones are
/// closed after the header-read timeout.
async fn idle_flood(t: &mut Target) {
    let (idle, _, _) = connection_budget();
    let mut conns = Vec::with_capacity(idle);
    let mut failed = 0;
    for chunk in 0..idle.div_ceil(100) {
        let n = 100.min(idle - chunk * 100);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            let addr = t.addr;
            set.spawn(async move {
                tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr)).await
            });
        }
        while let Some(r) = set.join_next().await {
            match r.unwrap() {
                Ok(Ok(s)) => conns.push(s),
                _ => failed += 1,
            }
        }
    }
    assert!(
        conns.len() > t.max_connections * 2,
        "{}: only {} of {idle} idle connections could be opened ({failed} failed)",
        t.name,
        conns.len()
    );
    t.assert_sockets_bounded("an idle-connection flood");
    t.assert_legit_scrape("an idle-connection flood").await;
    t.assert_sockets_bounded("an idle-connection flood");
    let n = conns.len();
    wait_all_closed(t, "idle flood", conns, Duration::from_secs(30)).await;
    eprintln!(
        "{}: {n} idle connections opened, all closed by the server",
        t.name
    );
    t.assert_legit_scrape("after the idle-connection flood")
        .await;
}

/// Runs every attack on `t` and checks its memory.
async fn survive(mut t: Target) {
    let t0 = Instant::now();
    t.assert_legit_scrape("warm-up").await;
    t.assert_legit_scrape("warm-up").await;
    let pid = t.pid();
    let rss0 = status_kib(pid, "VmRSS");
    reset_peak_rss(pid);

    malformed_heads(&mut t).await;
    bad_headers(&mut t).await;
    bad_queries(&mut t).await;
    auth_flood(&mut t).await;
    slow_loris(&mut t).await;
    idle_flood(&mut t).await;

    let hwm = status_kib(pid, "VmHWM");
    let rss = status_kib(pid, "VmRSS");
    eprintln!(
        "{}: RSS before {:.1} MiB, peak during the attacks {:.1} MiB, after {:.1} MiB ({:.1} s)",
        t.name,
        rss0 as f64 / 1024.0,
        hwm as f64 / 1024.0,
        rss as f64 / 1024.0,
        t0.elapsed().as_secs_f64()
    );
    assert!(
        hwm <= rss0 + MEMORY_BOUND_MIB * 1024,
        "{}: peak RSS {hwm} kB during the attacks, more than {MEMORY_BOUND_MIB} MiB over the {rss0} kB before",
        t.name
    );
    t.daemon.assert_running();
}

fn tempdir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("hpcmon-hostile-{name}-"))
        .tempdir()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_exporter_survives_hostile_input() {
    let dir = tempdir("node");
    let args = [
        "--collector.disable-defaults",
        "--collector.loadavg",
        "--collector.meminfo",
        "--collector.cpu",
    ]
    .map(String::from)
    .to_vec();
    let t = Target::start(
        "hpcmon-node-exporter",
        dir,
        args,
        "/metrics",
        "node_load1",
        Some("loadavg"),
    )
    .await;
    survive(t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_exporter_survives_hostile_input() {
    // Without a GPU (or NVML) the exporter serves gpu_nvml_up 0 and keeps retrying.
    let dir = tempdir("gpu");
    let t = Target::start(
        "hpcmon-gpu-exporter",
        dir,
        Vec::new(),
        "/metrics",
        "gpu_nvml_up",
        Some("info"),
    )
    .await;
    survive(t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmi_exporter_survives_hostile_input() {
    let dir = tempdir("ipmi");
    let config = dir.path().join("ipmi.yml");
    let password = dir.path().join("bmc.pass");
    std::fs::write(&password, "not-a-real-bmc\n").unwrap();
    std::fs::write(
        &config,
        format!(
            "modules:\n  default:\n    user: admin\n    password_file: {}\n    targets: [127.0.0.1]\n",
            password.display()
        ),
    )
    .unwrap();
    let sdr = dir.path().join("sdr");
    let args = vec![
        "--ipmi.local=off".to_string(),
        format!("--ipmi.sdr-cache-dir={}", sdr.display()),
        format!("--config.file={}", config.display()),
    ];
    let mut t = Target::start(
        "hpcmon-ipmi-exporter",
        dir,
        args,
        "/metrics",
        "ipmi_scrape_collector_success",
        Some("env"),
    )
    .await;
    // The multi-target endpoint checks its parameters before it contacts anything.
    for (what, q, want) in [
        ("no target", "/ipmi", 400),
        ("a target with a bad escape", "/ipmi?target=%ZZ", 400),
        (
            "a target with a shell meta",
            "/ipmi?target=127.0.0.1;id",
            400,
        ),
        (
            "a target outside the allow-list",
            "/ipmi?target=203.0.113.9",
            403,
        ),
        (
            "an unknown module",
            "/ipmi?target=127.0.0.1&module=%FF%FE",
            400,
        ),
        (
            "a 20 KiB target",
            &format!("/ipmi?target={}", "a".repeat(20_000)),
            400,
        ),
    ] {
        let req = t.request(q, "");
        t.expect_status(what, &req, want).await;
    }
    survive(t).await;
}

/// A `--slurm.bin-dir` whose Slurm commands print the outputs captured from the real test
/// cluster (exporters/slurm/testdata).
fn slurm_bin_dir(dir: &Path) -> std::path::PathBuf {
    let data = repo_root().join("exporters/slurm/testdata");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let cat = |f: &str| format!("exec cat '{}'\n", data.join(f).display());
    let scripts = [
        ("squeue", cat("squeue.txt")),
        (
            "sinfo",
            format!(
                "if [ \"$1\" = --version ]; then echo 'slurm 22.05.8'; exit 0; fi\n{}",
                cat("sinfo.txt")
            ),
        ),
        ("sdiag", cat("sdiag.txt")),
        ("sshare", cat("sshare.txt")),
        (
            "scontrol",
            format!(
                "case \"$*\" in\n  *reservation*) {}  ;;\n  *licenses*) {}  ;;\n  *) {}  ;;\nesac\n",
                cat("reservations.txt").trim(),
                cat("licenses.txt").trim(),
                cat("config.txt").trim()
            ),
        ),
    ];
    for (name, body) in scripts {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slurm_exporter_survives_hostile_input() {
    let dir = tempdir("slurm");
    let bin = slurm_bin_dir(dir.path());
    let args = vec![
        format!("--slurm.bin-dir={}", bin.display()),
        "--slurm.poll-interval=5s".to_string(),
    ];
    let t = Target::start(
        "hpcmon-slurm-exporter",
        dir,
        args,
        "/metrics",
        "slurm_jobs{",
        Some("jobs"),
    )
    .await;
    survive(t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_bridge_survives_hostile_input() {
    let dir = tempdir("bridge");
    let db = dir.path().join("alerts.db");
    let args = vec![format!("--storage.url=sqlite://{}", db.display())];
    let mut t = Target::start(
        "hpcmon-alert-bridge",
        dir,
        args,
        "/metrics",
        "alert_bridge_",
        None,
    )
    .await;
    // The query API refuses bad parameters with 400; lists of matchers are bounded.
    let matchers = |n: usize| {
        format!(
            "/api/v1/alerts?{}",
            "match[]=%7Bjob%3D%22x%22%7D&".repeat(n)
        )
    };
    let (few, many) = (matchers(32), matchers(600));
    for (what, q, want) in [
        ("a bad limit", "/api/v1/alerts?limit=abc", 400),
        (
            "a huge limit",
            "/api/v1/alerts?limit=99999999999999999999",
            400,
        ),
        ("a bad time", "/api/v1/alerts?from=yesterday-ish", 400),
        ("a bad sort", "/api/v1/alerts?sort=%FF%FE", 400),
        ("a bad matcher", "/api/v1/alerts?match[]=%7Bjob%3D", 400),
        ("a bad cursor", "/api/v1/alerts?cursor=%00_%00", 400),
        ("a bad id", "/api/v1/alerts/%FF", 400),
        ("garbage parameters", "/api/v1/alerts?%%%&&&===", 200),
        ("32 matchers", few.as_str(), 200),
        ("600 matchers", many.as_str(), 400),
    ] {
        let req = t.request(q, "");
        t.expect_status(what, &req, want).await;
    }
    survive(t).await;
}
