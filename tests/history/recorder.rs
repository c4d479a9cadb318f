//! Sends one client's operations to the real server and records each with its times.
//!
//! What: [`Recorder::perform`] turns a [`Call`] into its HTTP request on `/v1/kv/{key}`, reads
//! the answer back into a [`Ret`], and stamps the operation with the shared clock before the
//! request leaves and after the answer arrived.
//!
//! Why: the linearizability check needs each operation's interval on one clock all clients
//! share (a monotonic `Instant` taken once), and a classification of answers that never
//! guesses: a definite refusal (412, 404) did not happen; a lost answer (timeout, dropped
//! connection, 5xx such as an `ack=all` timeout) is "maybe happened".
//!
//! What it must never do: record an answer it did not get, or pass over an answer the API
//! does not allow (a 400 or an unreadable `ETag` fails the test: the test, not the server, is
//! then wrong).

use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;

use super::model::{Call, Op, Ret, ValueId};

/// The clock every client of a run shares.
#[derive(Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    /// Nanoseconds since the run started.
    pub fn now(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// One client: its HTTP connection pool, its id, and the write mode it asks for.
pub struct Recorder {
    http: Client,
    pub client: usize,
    clock: Clock,
    /// Query string for writes, e.g. `?ack=all`.
    write_query: String,
}

impl Recorder {
    pub fn new(client: usize, clock: Clock, ack: Option<&str>, timeout: Duration) -> Recorder {
        Recorder {
            http: Client::builder()
                .timeout(timeout)
                .build()
                .expect("HTTP client"),
            client,
            clock,
            write_query: ack.map_or(String::new(), |a| format!("?ack={a}")),
        }
    }

    /// Sends `call` on `key` to the server at `base` (`http://addr`) and records it.
    pub fn perform(&self, base: &str, key: &str, call: Call) -> Op {
        let invoked = self.clock.now();
        let ret = self.send(base, key, call);
        let returned = (ret != Ret::Unknown).then(|| self.clock.now());
        Op {
            client: self.client,
            call,
            ret,
            invoked,
            returned,
        }
    }

    fn send(&self, base: &str, key: &str, call: Call) -> Ret {
        let url = format!("{base}/v1/kv/{key}");
        let write_url = format!("{url}{}", self.write_query);
        let request = match call {
            Call::Set(value) => self.http.put(&write_url).body(body_of(value)),
            Call::Cas { expected, value } => self
                .http
                .put(&write_url)
                .header("If-Match", format!("\"{expected}\""))
                .body(body_of(value)),
            Call::Get => self.http.get(&url),
            Call::Delete => self.http.delete(&write_url),
        };
        let Ok(response) = request.send() else {
            return Ret::Unknown;
        };
        let status = response.status();
        let etag = response
            .headers()
            .get("etag")
            .map(|v| parse_etag(v.to_str().unwrap_or("")));
        let ret = match (call, status) {
            (Call::Set(_) | Call::Cas { .. }, StatusCode::NO_CONTENT) => {
                Ret::Written(etag.expect("a 204 to a PUT carries an ETag"))
            }
            (Call::Cas { .. }, StatusCode::PRECONDITION_FAILED) => Ret::Refused,
            (Call::Get, StatusCode::OK) => {
                let version = etag.expect("a 200 to a GET carries an ETag");
                match response.bytes() {
                    Ok(body) => Ret::Found(value_of(&body), version),
                    Err(_) => Ret::Unknown,
                }
            }
            (Call::Get | Call::Delete, StatusCode::NOT_FOUND) => Ret::Missing,
            (Call::Delete, StatusCode::NO_CONTENT) => Ret::Deleted,
            (_, s) if s.is_server_error() => Ret::Unknown,
            (_, s) => panic!(
                "{call:?} on {url} answered {s}: {}",
                response.text().unwrap_or_default()
            ),
        };
        ret
    }
}

/// The body a write stores: names the write.
pub fn body_of(value: ValueId) -> String {
    format!("v{value}")
}

/// The write a stored body names.
pub fn value_of(body: &[u8]) -> ValueId {
    std::str::from_utf8(body)
        .ok()
        .and_then(|b| b.strip_prefix('v'))
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("the server returned a value no client wrote: {body:?}"))
}

fn parse_etag(text: &str) -> u64 {
    text.trim()
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("unreadable ETag {text:?}"))
}
