//! End to end: a node dashboard works the same on `hpcmon-node-exporter` as on node_exporter.
//!
//! One real Prometheus scrapes both exporters on this machine — ours (job `ours`) and
//! Debian's node_exporter 1.5 (job `theirs`) — with the same textfile directory and
//! node_exporter 1.5's default collector set (Debian's build also turns `systemd` on; it is
//! turned off there, as upstream ships it). Every query of
//! `tests/testdata/node-dashboard-queries.txt` (the PromQL of a node dashboard's panels, after
//! the community's most used one) is evaluated once per job, and wherever node_exporter
//! answers, ours must answer with exactly the same series (label sets, `job` and `instance`
//! aside). Queries neither answers (hardware this machine lacks) are listed; at least half
//! of the queries must be answered by node_exporter, so that the comparison has something to
//! compare.
//!
//! Needs `cargo build --workspace --bins` and `scripts/install-deps.sh prom`
//! (prometheus, prometheus-node-exporter).

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use hpcmon_e2e::{free_port, repo_root, require_program, start_binary, Daemon, Prometheus};
use serde_json::Value;

/// The series of a query result: each one's labels without `job` and `instance`, as text.
fn series(result: &Value) -> BTreeSet<String> {
    result
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let mut labels: Vec<String> = s["metric"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| *k != "job" && *k != "instance")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            labels.sort();
            format!("{{{}}}", labels.join(","))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_dashboard_queries_answer_alike_on_both_exporters() {
    let theirs_bin = require_program("prometheus-node-exporter", "prom");
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path();
    let textfile = dir.path().join("textfile");
    std::fs::create_dir(&textfile).unwrap();
    std::fs::write(
        textfile.join("site.prom"),
        "# HELP site_info A textfile metric.\n# TYPE site_info gauge\nsite_info{rack=\"a\"} 1\n",
    )
    .unwrap();
    let textfile_flag = format!("--collector.textfile.directory={}", textfile.display());

    let (_ours, ours_port) = start_binary(
        "hpcmon-node-exporter",
        logs,
        std::slice::from_ref(&textfile_flag),
        &[],
    )
    .await;
    let theirs_port = free_port();
    let mut cmd = Command::new(&theirs_bin);
    cmd.arg(format!("--web.listen-address=127.0.0.1:{theirs_port}"))
        .arg("--no-collector.systemd")
        .arg(&textfile_flag);
    let mut theirs = Daemon::spawn_logged(
        "prometheus-node-exporter",
        cmd,
        &logs.join("node_exporter.log"),
    );
    theirs
        .wait_http(
            &format!("http://127.0.0.1:{theirs_port}/metrics"),
            Duration::from_secs(20),
        )
        .await
        .unwrap();

    let ours_target = format!("127.0.0.1:{ours_port}");
    let theirs_target = format!("127.0.0.1:{theirs_port}");
    let config = Prometheus::config(
        &[
            ("ours", ours_target.as_str(), ""),
            ("theirs", theirs_target.as_str(), ""),
        ],
        &[],
    );
    let prom = Prometheus::start(&config, &[]).await.unwrap();
    prom.wait_targets_up(Duration::from_secs(30)).await.unwrap();
    // irate needs two samples of each job in its window.
    for job in ["ours", "theirs"] {
        prom.wait_for(
            &format!("count_over_time(up{{job=\"{job}\"}}[1m])"),
            |r| hpcmon_e2e::first_value(r).is_some_and(|v| v >= 4.0),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    }

    let text =
        std::fs::read_to_string(repo_root().join("tests/testdata/node-dashboard-queries.txt"))
            .unwrap();
    let queries: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(queries.len() >= 100, "{} queries", queries.len());

    let (mut same, mut neither, mut failures) = (0, Vec::new(), Vec::new());
    for q in &queries {
        assert!(q.contains("{J"), "query without the {{J}} job matcher: {q}");
        let on = |job: &str| {
            q.replace("{J}", &format!("{{job=\"{job}\"}}"))
                .replace("{J,", &format!("{{job=\"{job}\","))
        };
        let theirs_r = prom
            .query(&on("theirs"))
            .await
            .unwrap_or_else(|e| panic!("{q}: {e:#}"));
        let ours_r = prom
            .query(&on("ours"))
            .await
            .unwrap_or_else(|e| panic!("{q}: {e:#}"));
        let (t, o) = (series(&theirs_r), series(&ours_r));
        if t.is_empty() {
            if o.is_empty() {
                neither.push(*q);
            } else {
                println!("ours only ({} series): {q}", o.len());
            }
            continue;
        }
        if t == o {
            same += 1;
        } else {
            let missing: Vec<&String> = t.difference(&o).collect();
            let extra: Vec<&String> = o.difference(&t).collect();
            failures.push(format!(
                "{q}\n    node_exporter only: {missing:?}\n    ours only: {extra:?}"
            ));
        }
    }
    println!(
        "{} queries: {same} answered alike, {} differ, {} answered by neither: {neither:#?}",
        queries.len(),
        failures.len(),
        neither.len()
    );
    assert!(
        failures.is_empty(),
        "queries answered differently:\n{}",
        failures.join("\n")
    );
    assert!(
        same * 2 >= queries.len(),
        "node_exporter answered only {same} of {} queries: the comparison is hollow",
        queries.len()
    );
}
