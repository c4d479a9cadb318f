//! Conditional requests on every method of `/v1/kv/{key}` (RFC 9110 §13), against the real
//! binary: a failed condition answers 412 (or 304 for a read) and changes nothing.

mod common;

use common::{client, Server};
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::StatusCode;
use serde_json::Value;

/// PUTs `value` under `key` and returns the new ETag.
fn put(c: &Client, s: &Server, key: &str, value: &str) -> String {
    let r = c
        .put(s.url(&format!("/v1/kv/{key}")))
        .body(value.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    r.headers()["etag"].to_str().unwrap().to_string()
}

/// Sends `req` with `headers`; returns the status, the ETag header if any, and the body.
fn send(req: RequestBuilder, headers: &[(&str, &str)]) -> (StatusCode, Option<String>, Vec<u8>) {
    let req = headers
        .iter()
        .fold(req, |r, (name, value)| r.header(*name, *value));
    let r = req.send().unwrap();
    let etag = r
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status(), etag, r.bytes().unwrap().to_vec())
}

/// The stored value, or `None` when absent.
fn value(c: &Client, s: &Server, key: &str) -> Option<Vec<u8>> {
    let r = c.get(s.url(&format!("/v1/kv/{key}"))).send().unwrap();
    match r.status() {
        StatusCode::OK => Some(r.bytes().unwrap().to_vec()),
        StatusCode::NOT_FOUND => None,
        other => panic!("GET answered {other}"),
    }
}

fn assert_precondition_failed(body: &[u8]) {
    let v: Value = serde_json::from_slice(body).expect("a JSON error body");
    let error = v["error"].as_str().expect("an error field");
    assert!(error.contains("precondition failed"), "{error}");
}

#[test]
fn delete_honours_if_match_and_if_none_match() {
    let s = Server::start(&[]);
    let c = client();
    let stale = put(&c, &s, "k", "old");
    let current = put(&c, &s, "k", "new");
    let delete = || c.delete(s.url("/v1/kv/k"));

    // Each failing condition: 412 with the JSON error, and the key is still there.
    let failing: [(&str, &str); 5] = [
        ("if-match", &stale),
        ("if-match", "\"1\", \"999999\""),
        ("if-none-match", "*"),
        ("if-none-match", &current),
        ("if-none-match", &format!("\"999999\", W/{current}")),
    ];
    for (name, tags) in failing {
        let (status, _, body) = send(delete(), &[(name, tags)]);
        assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{name}: {tags}");
        assert_precondition_failed(&body);
        assert_eq!(
            value(&c, &s, "k").as_deref(),
            Some(&b"new"[..]),
            "{name}: {tags}"
        );
    }
    // Both headers: If-Match holds but If-None-Match names the same version.
    let (status, _, _) = send(
        delete(),
        &[("if-match", &current), ("if-none-match", &current)],
    );
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert!(value(&c, &s, "k").is_some());

    // Conditions that hold delete.
    let (status, _, _) = send(delete(), &[("if-match", &format!("{stale}, {current}"))]);
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(value(&c, &s, "k"), None);
    put(&c, &s, "k", "again");
    let (status, _, _) = send(delete(), &[("if-match", "*")]);
    assert_eq!(status, StatusCode::NO_CONTENT);
    put(&c, &s, "k", "again");
    let (status, _, _) = send(delete(), &[("if-none-match", &current)]);
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "an older tag does not match"
    );
    assert_eq!(value(&c, &s, "k"), None);

    // An absent key is 404 whatever the condition (RFC 9110 §13.2.1).
    for (name, tags) in [
        ("if-match", "*"),
        ("if-match", current.as_str()),
        ("if-none-match", "*"),
    ] {
        assert_eq!(send(delete(), &[(name, tags)]).0, StatusCode::NOT_FOUND);
    }
    // Malformed tags are refused before anything is looked at.
    put(&c, &s, "k", "kept");
    for (name, tags) in [
        ("if-match", "garbage"),
        ("if-none-match", "\"1\", *"),
        ("if-match", "W/\"1\""),
    ] {
        assert_eq!(
            send(delete(), &[(name, tags)]).0,
            StatusCode::BAD_REQUEST,
            "{name}: {tags}"
        );
    }
    assert_eq!(value(&c, &s, "k").as_deref(), Some(&b"kept"[..]));
}

#[test]
fn delete_of_a_newer_version_is_refused() {
    // The lost-update case: a client read version 1, someone wrote version 2, and the first
    // client's conditional delete must not remove the newer value.
    let s = Server::start(&[]);
    let c = client();
    let read = put(&c, &s, "doc", "v1");
    put(&c, &s, "doc", "v2");
    let (status, _, _) = send(c.delete(s.url("/v1/kv/doc")), &[("if-match", &read)]);
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(value(&c, &s, "doc").as_deref(), Some(&b"v2"[..]));
}

#[test]
fn get_and_head_honour_if_none_match_and_if_match() {
    let s = Server::start(&[]);
    let c = client();
    let stale = put(&c, &s, "k", "old");
    let current = put(&c, &s, "k", "value");
    for head in [false, true] {
        let req = || {
            if head {
                c.head(s.url("/v1/kv/k"))
            } else {
                c.get(s.url("/v1/kv/k"))
            }
        };
        // If-None-Match matching the current version (strong, weak, in a list, or *): 304
        // with the ETag and no body.
        let weak = format!("W/{current}");
        let listed = format!("{stale}, {current}");
        for tags in [current.as_str(), weak.as_str(), listed.as_str(), "*"] {
            let (status, etag, body) = send(req(), &[("if-none-match", tags)]);
            assert_eq!(status, StatusCode::NOT_MODIFIED, "head={head} {tags}");
            assert_eq!(etag.as_deref(), Some(current.as_str()));
            assert!(body.is_empty());
        }
        // Not matching: the value as usual.
        let (status, etag, body) = send(req(), &[("if-none-match", &stale)]);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(etag.as_deref(), Some(current.as_str()));
        if !head {
            assert_eq!(body, b"value");
        }
        // If-Match not matching: 412; matching: 200.
        let (status, _, body) = send(req(), &[("if-match", &stale)]);
        assert_eq!(status, StatusCode::PRECONDITION_FAILED, "head={head}");
        if !head {
            assert_precondition_failed(&body);
        }
        for tags in [current.as_str(), listed.as_str(), "*"] {
            assert_eq!(
                send(req(), &[("if-match", tags)]).0,
                StatusCode::OK,
                "{tags}"
            );
        }
        // If-Match is judged first.
        let (status, _, _) = send(req(), &[("if-match", &stale), ("if-none-match", &current)]);
        assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    }
    // An absent key is 404 whatever the condition.
    let (status, _, _) = send(c.get(s.url("/v1/kv/absent")), &[("if-none-match", "*")]);
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = send(c.get(s.url("/v1/kv/absent")), &[("if-match", "*")]);
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn put_honours_if_none_match_with_entity_tags() {
    let s = Server::start(&[]);
    let c = client();
    let stale = put(&c, &s, "k", "old");
    let current = put(&c, &s, "k", "value");
    let put_req = || c.put(s.url("/v1/kv/k")).body("lost");
    // Naming the current version (strongly, weakly or in a list): 412, nothing written.
    let weak = format!("W/{current}");
    let listed = format!("\"999999\", {current}");
    for tags in [current.as_str(), weak.as_str(), listed.as_str()] {
        let (status, _, body) = send(put_req(), &[("if-none-match", tags)]);
        assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{tags}");
        assert_precondition_failed(&body);
    }
    // If-Match with a list not naming it: 412 too.
    let (status, _, _) = send(put_req(), &[("if-match", &format!("{stale}, \"999999\""))]);
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(value(&c, &s, "k").as_deref(), Some(&b"value"[..]));
    // Naming only other versions: written.
    let (status, etag, _) = send(
        c.put(s.url("/v1/kv/k")).body("won"),
        &[("if-none-match", &stale)],
    );
    assert_eq!(status, StatusCode::NO_CONTENT);
    let won = etag.expect("an ETag");
    let (status, _, _) = send(
        c.put(s.url("/v1/kv/k")).body("listed"),
        &[("if-match", &format!("{stale}, {won}"))],
    );
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(value(&c, &s, "k").as_deref(), Some(&b"listed"[..]));
    // An absent key with If-None-Match tags is written.
    let (status, _, _) = send(
        c.put(s.url("/v1/kv/fresh")).body("v"),
        &[("if-none-match", "\"1\"")],
    );
    assert_eq!(status, StatusCode::NO_CONTENT);
    // More tags than a condition holds: 400, naming the limit.
    let many = (0..17)
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let (status, _, body) = send(put_req(), &[("if-match", &many)]);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("at most 16"));
}
