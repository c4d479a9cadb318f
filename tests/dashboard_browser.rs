//! The dashboard page in headless Chromium: it loads, shows the server's key count, and the
//! number changes after a `/set`.
//!
//! Needs Debian's `chromium` (the README's test command installs it). Without it this test
//! fails and says what to install; it never skips silently.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{client, Server};

fn chromium() -> PathBuf {
    let candidates = [
        std::env::var("CHROMIUM").unwrap_or_default(),
        "/usr/bin/chromium".into(),
        "/usr/bin/chromium-browser".into(),
        "/usr/bin/google-chrome".into(),
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect(
            "headless Chromium is needed for the dashboard test: install Debian's package with \
             `apt-get install -y chromium` (or set CHROMIUM=/path/to/chrome)",
        )
}

/// Loads `url` in headless Chromium, lets its scripts run, and returns the resulting DOM.
fn rendered_dom(url: &str, screenshot: Option<&str>) -> String {
    // One profile per call: tests in this binary run on parallel threads, and two browsers on
    // one profile refuse to start (Chromium's singleton lock).
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile =
        std::env::temp_dir().join(format!("shardkv-chromium-{}-{call}", std::process::id()));
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=3000",
        "--window-size=1280,900",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    match screenshot {
        Some(path) => cmd.arg(format!("--screenshot={path}")),
        None => cmd.arg("--dump-dom"),
    };
    let out = cmd.arg(url).output().expect("run chromium");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the element with `id` in the rendered page.
fn element_text<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("the page has no {id} element"));
    let text = &dom[at..];
    let start = text.find('>').unwrap() + 1;
    let end = text[start..].find('<').unwrap() + start;
    text[start..end].trim()
}

fn total_keys(dom: &str) -> u64 {
    let shown = element_text(dom, "total-keys");
    shown
        .parse()
        .unwrap_or_else(|_| panic!("total-keys shows {shown:?}"))
}

#[test]
fn dashboard_page_shows_the_key_count_and_follows_writes() {
    let s = Server::start(&[]);
    let c = client();
    for i in 0..3 {
        c.get(s.url(&format!("/set?key=k{i}&value=v")))
            .send()
            .unwrap();
    }
    let dom = rendered_dom(&s.url("/"), None);
    assert!(dom.contains("shardkv"), "page did not render: {dom}");
    assert_eq!(total_keys(&dom), 3);

    for i in 3..10 {
        c.get(s.url(&format!("/set?key=k{i}&value=v")))
            .send()
            .unwrap();
    }
    let dom = rendered_dom(&s.url("/"), None);
    assert_eq!(total_keys(&dom), 10);

    // An artefact for the README when asked for.
    if let Ok(path) = std::env::var("SHARDKV_SCREENSHOT") {
        rendered_dom(&s.url("/"), Some(&path));
        assert!(std::fs::metadata(&path).is_ok_and(|m| m.len() > 0));
    }
}

#[test]
fn dashboard_page_shows_evictions_and_the_policy() {
    let s = Server::start(&["--max-memory", "20000", "--maxmemory-policy", "allkeys-lru"]);
    let c = client();
    for i in 0..400 {
        let status = c
            .get(s.url(&format!("/set?key=k{i}&value={}", "v".repeat(50))))
            .send()
            .unwrap()
            .status();
        assert_eq!(status, 200, "write {i}");
    }
    let dom = rendered_dom(&s.url("/"), None);
    assert_eq!(element_text(&dom, "maxmemory-policy"), "allkeys-lru");
    let evicted: u64 = element_text(&dom, "evicted")
        .replace([',', ' '], "")
        .parse()
        .expect("evicted shows a count");
    assert!(evicted > 0, "the page shows no evictions");
}
