//! The web page in headless Chromium: it renders the alert log of a bridge with known
//! alerts, applies filters from the URL, and shows hostile label values as text.

mod common;

use common::{payload, wh_alert, Backend, Bridge};
use hpcmon_e2e::{dump_dom, table_rows};
use serde_json::json;

/// The alert log's table rows (`<tbody id="rows">`), each as its cells' text.
fn rows(dom: &str) -> Vec<Vec<String>> {
    table_rows(dom, "rows")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_renders_the_alert_log() {
    let be = Backend::sqlite();
    let bridge = Bridge::start(&be, &[]).await;
    let hostile = "<img src=x onerror=\"document.title='pwned'\">";
    let alerts = vec![
        wh_alert(
            "p1",
            json!({"alertname": "NodeHot", "instance": "n01:9100", "severity": "critical"}),
            "CPU temperature 95 C",
            "2026-03-01T10:00:00Z",
            None,
        ),
        wh_alert(
            "p2",
            json!({"alertname": "PsuFailed", "node": "n02", "severity": "warning"}),
            "PSU 1 failed",
            "2026-03-01T09:00:00Z",
            Some("2026-03-01T09:05:00Z"),
        ),
        wh_alert(
            "p3",
            json!({"alertname": "Hostile", "node": hostile, "severity": "info"}),
            hostile,
            "2026-03-01T08:00:00Z",
            None,
        ),
    ];
    assert_eq!(
        bridge.post(payload("firing", alerts).to_string()).await.0,
        200
    );

    let dom = dump_dom(&bridge.url("/?range=all&refresh=0"));
    assert!(
        dom.contains("<title>Alert log · hpcmon-alert-bridge</title>"),
        "a label value ran as HTML (the title changed)"
    );
    assert!(!dom.contains("<img"), "a label value became an element");
    let r = rows(&dom);
    assert_eq!(r.len(), 3, "{dom}");
    // Newest first: status, severity, alert, instance, summary, started, resolved, duration, links.
    assert_eq!(
        r[0][..8],
        [
            "firing",
            "critical",
            "NodeHot",
            "n01:9100",
            "CPU temperature 95 C",
            "2026-03-01 10:00:00",
            "firing",
            r[0][7].as_str()
        ]
    );
    assert_eq!(
        r[1][..8],
        [
            "resolved",
            "warning",
            "PsuFailed",
            "n02",
            "PSU 1 failed",
            "2026-03-01 09:00:00",
            "2026-03-01 09:05:00",
            "5m 0s"
        ]
    );
    assert_eq!(r[2][2], "Hostile");
    assert_eq!(r[2][3], hostile);
    assert_eq!(r[2][4], hostile);
    assert!(r[0][8].contains("source") && r[0][8].contains("history"));
    assert!(dom.contains("href=\"http://127.0.0.1:9090/graph?g0.expr=up\""));
    assert!(dom.contains("3 episodes"));

    // Filters come from the URL and reach the API.
    let r = rows(&dump_dom(
        &bridge.url("/?range=all&refresh=0&status=resolved"),
    ));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0][2], "PsuFailed");
    let r = rows(&dump_dom(
        &bridge.url("/?range=all&refresh=0&matcher=%7Binstance%3D~%22n0.*%22%7D"),
    ));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0][2], "NodeHot");
    // A bad matcher shows the API's error instead of a table.
    let dom = dump_dom(&bridge.url("/?range=all&refresh=0&matcher=%7Bx%3D%7D"));
    assert!(dom.contains("Query failed:"), "{dom}");
    assert!(rows(&dom).is_empty());
}
