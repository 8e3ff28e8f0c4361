//! Issue 11: a regex matcher over a label with 432,000 distinct values loaded every value per
//! query (1–1.6 s each), and four at once took the bridge to 745 MB. It now reads the label
//! once into a bounded index (`storage/value_index.rs`, 64 MiB of text at most) and tests
//! the values there.
//!
//! Memory, not time, is asserted: the bridge's peak RSS while four unprefixed regex queries
//! run at once stays under [`BOUND_MIB`].
//!
//! It cannot run against the bridge from before the fix (`HPCMON_ALERT_BRIDGE_BIN`): that one
//! predates the v2 schema this database is generated with. The benchmark showed the defect
//! on it (`cargo bench -p hpcmon-alert-bridge --bench load`, README "Benchmark").

mod common;
#[path = "../benches/common/mod.rs"]
mod gen;

use common::{Backend, Bridge};

const EPISODES: i64 = 432_000;
const BOUND_MIB: u64 = 256;

fn peak_rss_mib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM");
    kb / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_regex_queries_over_432k_values_stay_bounded() {
    let backend = Backend::sqlite();
    // One distinct job_id per episode.
    gen::generate_at("sqlite", &backend.url(), EPISODES, EPISODES).await;
    let bridge = Bridge::start(&backend, &["--storage.query-timeout=5m"]).await;
    let pid = bridge.daemon.pid();
    let before = peak_rss_mib(pid);
    let mut tasks = Vec::new();
    for k in 0..4 {
        let (c, url) = (bridge.client.clone(), bridge.url("/api/v1/alerts"));
        tasks.push(tokio::spawn(async move {
            let m = format!("{{job_id=~\".*{:04}\"}}", 1234 + k);
            let r = c
                .get(&url)
                .query(&[("match[]", m.as_str()), ("limit", "100")])
                .timeout(std::time::Duration::from_secs(600))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            (k, status, body)
        }));
    }
    for t in tasks {
        let (k, status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        let rows = body["data"].as_array().cloned().unwrap_or_default();
        assert!(!rows.is_empty(), "{body}");
        let suffix = format!("{:04}", 1234 + k);
        for r in &rows {
            let job = r["labels"]["job_id"].as_str().unwrap();
            assert!(job.ends_with(&suffix), "{job} does not match .*{suffix}");
        }
    }
    let peak = peak_rss_mib(pid);
    println!("peak RSS: {before} MiB before the queries, {peak} MiB after");
    assert!(
        peak < BOUND_MIB,
        "four regex queries over {EPISODES} values took the bridge to {peak} MiB (bound {BOUND_MIB})"
    );
}
