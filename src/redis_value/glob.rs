//! Redis's glob matcher (`stringmatchlen`, util.c 7.0.15), used by KEYS and SCAN MATCH.
//!
//! Tokens: `*` (any run, consecutive stars collapse), `?` (one byte), `[...]` (a set: `^`
//! negates, `a-z` ranges in either order, `\x` escapes, an unterminated `[` takes the rest
//! of the pattern as the set), `\x` (a literal), anything else literal. Bytes, not chars;
//! ranges compare bytes as C's signed `char`, and `nocase` folds only ASCII letters, as
//! Redis does (it never sets LC_CTYPE).
//!
//! Quirks kept on purpose: an empty string matches only the empty pattern (not even `*`),
//! because Redis's loop never runs for it. KEYS and SCAN treat the pattern exactly `*` as
//! "everything" without calling the matcher (so they do list an empty key): the command glue
//! must do the same before calling [`glob_match`].
//!
//! Redis 7.0.15 recurses at each `*`, and stops retrying earlier stars once a later star has
//! tried every position (`skipLongerMatches`), which bounds the work to about
//! pattern length x string length. Every non-star token consumes exactly one byte, so that
//! search is exactly "backtrack only to the most recent star": this is written as a loop
//! with that one saved position, so a pattern with many stars cannot exhaust the stack.
//! Redis 7.0.15 has no limit on pattern nesting (later releases added one against deep
//! recursion); this loop needs none, since it never recurses.
//! Must never read outside either slice: C reads the terminating NUL, modelled as byte 0.

/// What the C loop did when it stopped: finished with a result, or reached a star.
enum Segment {
    Done(bool),
    /// At a run of stars; the index of the run's last `*` and the string position.
    Star {
        pattern_at: usize,
        string_at: usize,
    },
}

/// True when `string` matches the glob `pattern`.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    // (index of a star, string position its rest was last tried at)
    let mut last_star: Option<(usize, usize)> = None;
    let mut segment = match_segment(pattern, 0, string, 0, nocase);
    loop {
        match segment {
            Segment::Done(true) => return true,
            Segment::Done(false) => {
                let Some((star_at, tried_at)) = last_star else {
                    return false;
                };
                let next = tried_at + 1;
                if next >= string.len() {
                    return false;
                }
                last_star = Some((star_at, next));
                segment = match_segment(pattern, star_at + 1, string, next, nocase);
            }
            Segment::Star {
                pattern_at,
                string_at,
            } => {
                if pattern_at + 1 == pattern.len() {
                    return true; // A trailing star matches the (non-empty) rest.
                }
                last_star = Some((pattern_at, string_at));
                segment = match_segment(pattern, pattern_at + 1, string, string_at, nocase);
            }
        }
    }
}

/// C's `tolower` in the C locale, over C's signed `char` values.
fn lower(byte: i32) -> i32 {
    if (i32::from(b'A')..=i32::from(b'Z')).contains(&byte) {
        byte + 32
    } else {
        byte
    }
}

/// A byte as C's signed `char`.
fn signed(byte: u8) -> i32 {
    i32::from(byte as i8)
}

/// One byte equal to another, as Redis compares them.
fn same(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        lower(signed(a)) == lower(signed(b))
    } else {
        a == b
    }
}

/// Runs Redis's loop from `pattern[p..]` against `string[s..]` until it ends or meets a `*`.
fn match_segment(
    pattern: &[u8],
    mut p: usize,
    string: &[u8],
    mut s: usize,
    nocase: bool,
) -> Segment {
    // C reads one past the end (the terminating NUL).
    let at = |index: usize| pattern.get(index).copied().unwrap_or(0);
    let plen = pattern.len();
    while p < plen && s < string.len() {
        let current = string[s];
        match pattern[p] {
            b'*' => {
                while p < plen && at(p + 1) == b'*' {
                    p += 1;
                }
                return Segment::Star {
                    pattern_at: p,
                    string_at: s,
                };
            }
            b'?' => s += 1,
            b'[' => {
                p += 1;
                let negate = at(p) == b'^';
                if negate {
                    p += 1;
                }
                let mut matched = false;
                loop {
                    let left = plen.saturating_sub(p);
                    if at(p) == b'\\' && left >= 2 {
                        p += 1;
                        if at(p) == current {
                            matched = true;
                        }
                    } else if at(p) == b']' {
                        break;
                    } else if left == 0 {
                        p -= 1;
                        break;
                    } else if left >= 3 && at(p + 1) == b'-' {
                        let (mut start, mut end) = (signed(at(p)), signed(at(p + 2)));
                        let mut byte = signed(current);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = lower(start);
                            end = lower(end);
                            byte = lower(byte);
                        }
                        p += 2;
                        if byte >= start && byte <= end {
                            matched = true;
                        }
                    } else if same(at(p), current, nocase) {
                        matched = true;
                    }
                    p += 1;
                }
                if negate {
                    matched = !matched;
                }
                if !matched {
                    return Segment::Done(false);
                }
                s += 1;
            }
            first => {
                let literal = if first == b'\\' && plen - p >= 2 {
                    p += 1;
                    pattern[p]
                } else {
                    first
                };
                if !same(literal, current, nocase) {
                    return Segment::Done(false);
                }
                s += 1;
            }
        }
        p += 1;
        if s == string.len() {
            while at(p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    Segment::Done(p >= plen && s == string.len())
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(pattern: &str, string: &str) -> bool {
        glob_match(pattern.as_bytes(), string.as_bytes(), false)
    }

    #[test]
    fn redis_glob_cases() {
        assert!(m("*", "abc"));
        assert!(!m("*", ""));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("a*c", "abbbc"));
        assert!(!m("a*c", "abbbd"));
        assert!(m("h?llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hbllo"));
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("[abc", "c"));
        assert!(m("a**b***", "ab"));
        assert!(m("*a*a*a*a*a*a*a*a*b", &format!("{}b", "a".repeat(100))));
        assert!(!m("*a*a*a*a*a*a*a*a*b", &"a".repeat(100)));
        assert!(glob_match(b"HELLO", b"hello", true));
        assert!(glob_match(b"[A-Z]", b"q", true));
    }

    #[test]
    fn many_stars_do_not_exhaust_the_stack() {
        let pattern = "*a".repeat(100_000);
        assert!(!m(&pattern, &"a".repeat(1000)));
    }
}
