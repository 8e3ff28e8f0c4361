//! Pages as people see them: headless Chromium (Debian's `chromium`) loads a URL, runs its
//! JavaScript (fetches finish within a virtual time budget) and returns the DOM, and the
//! cells of a table body read back as text.

use std::process::Command;

use crate::require_program;

/// Loads `url` in headless Chromium and returns the DOM after its scripts ran; panics with
/// Chromium's stderr when it fails, and with the install command when it is missing.
pub fn dump_dom(url: &str) -> String {
    require_program("chromium", "chromium");
    let profile = tempfile::tempdir().expect("a Chromium profile directory");
    let out = Command::new("timeout")
        .arg("90")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--no-first-run",
            "--window-size=1400,900",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("running chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("a UTF-8 DOM")
}

/// The rows of `<tbody id="ID">` in a dumped DOM, each as its cells' text: tags removed
/// (a tag counts as a space), HTML entities decoded, whitespace collapsed.
pub fn table_rows(dom: &str, tbody_id: &str) -> Vec<Vec<String>> {
    let body = dom
        .split(&format!("<tbody id=\"{tbody_id}\">"))
        .nth(1)
        .unwrap_or_else(|| panic!("no <tbody id=\"{tbody_id}\"> in the DOM"))
        .split("</tbody>")
        .next()
        .unwrap_or("");
    body.split("<tr")
        .skip(1)
        .map(|tr| {
            tr.split("<td")
                .skip(1)
                .map(|td| {
                    let inner = td.split_once('>').map_or("", |x| x.1);
                    let inner = inner.split("</td>").next().unwrap_or("");
                    let mut text = String::new();
                    let mut in_tag = false;
                    for c in inner.chars() {
                        match c {
                            '<' => {
                                in_tag = true;
                                text.push(' ');
                            }
                            '>' => in_tag = false,
                            c if !in_tag => text.push(c),
                            _ => {}
                        }
                    }
                    text.replace("&lt;", "<")
                        .replace("&gt;", ">")
                        .replace("&quot;", "\"")
                        .replace("&amp;", "&")
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        })
        .collect()
}
