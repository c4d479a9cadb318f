//! Batch request bodies: `/v1/mget` and `/v1/mset` JSON, and how values are encoded in it.
//!
//! Parsing is separate from the store so it can be fuzzed on its own: these functions see only
//! bytes from the client and return typed errors. Limits that depend on the store (key and
//! value sizes) are checked by the caller before any write.
//!
//! Must never: accept a batch partially (every item is parsed before any is returned), or turn a
//! binary value into replacement characters (it is refused with a hint to use base64 instead).

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;

use super::query::Params;
use super::reply::ApiError;
use super::routes::ttl_param;

/// How batch values are written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Values are JSON strings holding UTF-8 text (the default).
    Utf8,
    /// Values are standard base64 (`?encoding=base64`), for arbitrary bytes.
    Base64,
}

impl Encoding {
    /// Reads `encoding` from a query string.
    pub fn from_query(query: &[u8]) -> Result<Encoding, ApiError> {
        let params = Params::parse(query)?;
        match params.encoding.as_deref() {
            None | Some(b"utf8") | Some(b"utf-8") => Ok(Encoding::Utf8),
            Some(b"base64") => Ok(Encoding::Base64),
            Some(other) => Err(ApiError::BadParam {
                name: "encoding",
                value: String::from_utf8_lossy(other).into_owned(),
                expected: "utf8 or base64",
            }),
        }
    }

    /// A stored value as a JSON string in this encoding.
    pub fn encode(self, key: &str, value: &[u8]) -> Result<String, ApiError> {
        match self {
            Encoding::Base64 => Ok(base64::engine::general_purpose::STANDARD.encode(value)),
            Encoding::Utf8 => String::from_utf8(value.to_vec())
                .map_err(|_| ApiError::ValueNotUtf8(key.to_string())),
        }
    }

    /// A JSON string from the client as the bytes to store; `item` names it in errors.
    pub fn decode(self, item: usize, text: String) -> Result<Bytes, ApiError> {
        match self {
            Encoding::Utf8 => Ok(Bytes::from(text.into_bytes())),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map(Bytes::from)
                .map_err(|e| ApiError::BadParam {
                    name: "value",
                    value: format!("item {item}"),
                    expected: if matches!(e, base64::DecodeError::InvalidByte(..)) {
                        "standard base64 (A-Z a-z 0-9 + /, with = padding)"
                    } else {
                        "standard base64 with correct padding"
                    },
                }),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MgetBody {
    keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MsetBody {
    items: Vec<MsetItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MsetItem {
    key: String,
    value: String,
    #[serde(default)]
    ttl: Option<String>,
}

/// One parsed `/v1/mset` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchWrite {
    /// The key.
    pub key: String,
    /// The value's bytes, decoded.
    pub value: Bytes,
    /// The TTL, if any.
    pub ttl: Option<std::time::Duration>,
}

/// serde's message names the offending input; keep it short so a large body cannot make a
/// large error.
fn json_error(e: serde_json::Error) -> ApiError {
    const MAX: usize = 200;
    let mut message = e.to_string();
    if message.len() > MAX {
        let mut cut = MAX;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    ApiError::Json(message)
}

fn check_len(len: usize, max: usize) -> Result<(), ApiError> {
    if len > max {
        return Err(ApiError::BatchTooLarge { len, max });
    }
    Ok(())
}

/// Parses a `/v1/mget` body: the keys asked for, at most `max_items`.
pub fn parse_mget(body: &[u8], max_items: usize) -> Result<Vec<String>, ApiError> {
    let request: MgetBody = serde_json::from_slice(body).map_err(json_error)?;
    check_len(request.keys.len(), max_items)?;
    Ok(request.keys)
}

/// Parses a `/v1/mset` body: every item, values decoded and TTLs parsed, or the first error.
pub fn parse_mset(
    body: &[u8],
    encoding: Encoding,
    max_items: usize,
) -> Result<Vec<BatchWrite>, ApiError> {
    let request: MsetBody = serde_json::from_slice(body).map_err(json_error)?;
    check_len(request.items.len(), max_items)?;
    request
        .items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            Ok(BatchWrite {
                value: encoding.decode(i, item.value)?,
                ttl: ttl_param(item.ttl.as_deref().map(str::as_bytes))?,
                key: item.key,
            })
        })
        .collect()
}
