//! The conditional headers `If-Match` and `If-None-Match`: parsed into entity tags, then into
//! the one store [`Condition`] a write checks inside its shard's writer section.
//!
//! Our ETags are strong (`"<version>"`). A weak tag is accepted where the RFC compares weakly
//! (`If-None-Match`) and refused in `If-Match`, where it could never match.
//!
//! Must never: accept a header it cannot parse exactly (it is a 400, not "no condition"), or
//! hold more than [`MAX_CONDITION_VERSIONS`] tags.

use hyper::body::Incoming;
use hyper::header::{HeaderName, IF_MATCH, IF_NONE_MATCH};
use hyper::Request;

use super::reply::ApiError;
use crate::store::{Condition, Versions, MAX_CONDITION_VERSIONS};

/// The entity tags of one conditional header: `*`, or a list of our (strong) ETags.
#[derive(Debug, Clone, Copy)]
pub(super) enum Tags {
    /// `*`: any current value.
    Any,
    /// These versions.
    List(Versions),
}

impl Tags {
    /// Whether a live value of `version` matches (our tags are strong, so strong and weak
    /// comparison agree once a weak tag's `W/` is dropped).
    pub(super) fn matches(self, version: u64) -> bool {
        match self {
            Tags::Any => true,
            Tags::List(versions) => versions.contains(version),
        }
    }

    /// Parses every `name` header of `req` (a repeated header is one comma-separated list).
    /// `weak_ok`: whether `W/"v"` is accepted (`If-None-Match`, which compares weakly); an
    /// `If-Match` with a weak tag could never match, and is refused as a client mistake.
    fn parse(
        req: &Request<Incoming>,
        header: HeaderName,
        name: &'static str,
        weak_ok: bool,
    ) -> Result<Option<Tags>, ApiError> {
        let expected = if weak_ok {
            "* or a list of quoted versions from ETags, like \"42\", \"43\""
        } else {
            "* or a list of quoted versions from ETags, like \"42\", \"43\" (strong tags only)"
        };
        let mut present = false;
        let mut any = false;
        let mut versions = Versions::new();
        for value in req.headers().get_all(header) {
            present = true;
            let bad = || ApiError::BadParam {
                name,
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
                expected,
            };
            let text = value.to_str().map_err(|_| bad())?.trim();
            if text == "*" {
                any = true;
                continue;
            }
            for item in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                let tag = match item.strip_prefix("W/") {
                    Some(tag) if weak_ok => tag,
                    Some(_) => return Err(bad()),
                    None => item,
                };
                let version = tag
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|t| t.parse::<u64>().ok())
                    .ok_or_else(bad)?;
                if !versions.push(version) {
                    return Err(ApiError::BadParam {
                        name,
                        value: format!("a list of more than {MAX_CONDITION_VERSIONS} tags"),
                        expected: "at most 16 entity tags",
                    });
                }
            }
        }
        let has_tags = !versions.as_slice().is_empty();
        if present && any == has_tags {
            // `*` together with tags, or nothing but commas.
            return Err(ApiError::BadParam {
                name,
                value: "* together with tags, or an empty list".into(),
                expected,
            });
        }
        Ok(match (present, any) {
            (false, _) => None,
            (true, true) => Some(Tags::Any),
            (true, false) => Some(Tags::List(versions)),
        })
    }
}

/// The `If-Match` and `If-None-Match` headers of a request.
#[derive(Debug, Clone, Copy)]
pub(super) struct Preconditions {
    pub(super) if_match: Option<Tags>,
    pub(super) if_none_match: Option<Tags>,
}

impl Preconditions {
    pub(super) fn of(req: &Request<Incoming>) -> Result<Preconditions, ApiError> {
        Ok(Preconditions {
            if_match: Tags::parse(req, IF_MATCH, "If-Match", false)?,
            if_none_match: Tags::parse(req, IF_NONE_MATCH, "If-None-Match", true)?,
        })
    }

    /// Both headers as the one condition a write checks inside the store's writer section.
    pub(super) fn condition(self) -> Result<Condition, ApiError> {
        // A condition no live or absent key meets.
        let never = Condition::IfVersionIn(Versions::new());
        Ok(match (self.if_match, self.if_none_match) {
            (None, None) => Condition::Always,
            (Some(Tags::Any), None) => Condition::IfPresent,
            (Some(Tags::List(versions)), None) => match versions.as_slice() {
                [version] => Condition::IfVersion(*version),
                _ => Condition::IfVersionIn(versions),
            },
            (None, Some(Tags::Any)) => Condition::IfAbsent,
            (None, Some(Tags::List(versions))) => Condition::IfNoneOf(versions),
            // Present (If-Match) and absent (If-None-Match: *) at once.
            (Some(_), Some(Tags::Any)) => never,
            (Some(Tags::List(matching)), Some(Tags::List(excluded))) => {
                let mut left = Versions::new();
                for &v in matching.as_slice() {
                    if !excluded.contains(v) {
                        left.push(v);
                    }
                }
                Condition::IfVersionIn(left)
            }
            (Some(Tags::Any), Some(Tags::List(_))) => {
                return Err(ApiError::BadParam {
                    name: "If-None-Match",
                    value: "a list of tags with If-Match: *".into(),
                    expected: "If-Match: * alone, or If-Match with a list of tags",
                })
            }
        })
    }
}
