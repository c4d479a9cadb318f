//! LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN] (t_string.c 7.0.15).
//!
//! The classic dynamic-programming table of `u32` lengths, walked back from the end to build
//! the common subsequence and, for IDX, the matched ranges in the order Redis emits them (from
//! the end of the strings towards the start). The table needs (alen+1)*(blen+1)*4 bytes: it is
//! refused with Redis's error when that exceeds the caller's limit (Redis uses
//! `proto-max-bulk-len`), and allocated fallibly, so LCS can never exhaust memory or abort.

use super::integer::parse_integer;
use super::ValueError;

/// The parsed options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LcsOptions {
    /// LEN: reply with the length only.
    pub len: bool,
    /// IDX: reply with the matched ranges and the length.
    pub idx: bool,
    /// MINMATCHLEN: omit ranges shorter than this (negative counts as 0).
    pub min_match_len: u64,
    /// WITHMATCHLEN: add each range's length.
    pub with_match_len: bool,
}

/// Parses the arguments after the two keys, with Redis's errors in Redis's order.
pub fn parse_lcs_options<A: AsRef<[u8]>>(args: &[A]) -> Result<LcsOptions, ValueError> {
    let mut options = LcsOptions::default();
    let mut index = 0;
    while let Some(arg) = args.get(index) {
        let arg = arg.as_ref();
        let more = index + 1 < args.len();
        if arg.eq_ignore_ascii_case(b"IDX") {
            options.idx = true;
        } else if arg.eq_ignore_ascii_case(b"LEN") {
            options.len = true;
        } else if arg.eq_ignore_ascii_case(b"WITHMATCHLEN") {
            options.with_match_len = true;
        } else if arg.eq_ignore_ascii_case(b"MINMATCHLEN") && more {
            let value = parse_integer(args[index + 1].as_ref())?;
            options.min_match_len = u64::try_from(value).unwrap_or(0);
            index += 1;
        } else {
            return Err(ValueError::Syntax);
        }
        index += 1;
    }
    if options.len && options.idx {
        return Err(ValueError::LcsLenAndIdx);
    }
    Ok(options)
}

/// One matched range: inclusive byte ranges in each string and their length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LcsMatch {
    /// `[start, end]` in the first string.
    pub a: (u32, u32),
    /// `[start, end]` in the second string.
    pub b: (u32, u32),
    /// `end - start + 1`.
    pub len: u32,
}

/// What LCS replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LcsReply {
    /// No option: the common subsequence itself (a bulk string).
    Sequence(Vec<u8>),
    /// LEN: its length (an integer).
    Length(u64),
    /// IDX: a map {"matches": [[[a0, a1], [b0, b1]{, len}], ...], "len": n}.
    Matches {
        /// The ranges, in Redis's order (last first).
        matches: Vec<LcsMatch>,
        /// The subsequence length.
        len: u64,
        /// Whether each match carries its length (WITHMATCHLEN).
        with_match_len: bool,
    },
}

/// LCS of `a` and `b` (absent keys are empty strings) with parsed options; `max_table_bytes`
/// is the transient-memory limit (Redis: `proto-max-bulk-len`).
pub fn lcs(
    a: &[u8],
    b: &[u8],
    options: &LcsOptions,
    max_table_bytes: u64,
) -> Result<LcsReply, ValueError> {
    let limit = u64::from(u32::MAX) - 1;
    if a.len() as u64 >= limit || b.len() as u64 >= limit {
        return Err(ValueError::LcsStringTooLong);
    }
    let width = b.len() + 1;
    let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
    if cells * 4 > max_table_bytes {
        return Err(ValueError::LcsMemory);
    }
    let cells = usize::try_from(cells).map_err(|_| ValueError::LcsAllocation)?;
    let mut table: Vec<u32> = Vec::new();
    table
        .try_reserve_exact(cells)
        .map_err(|_| ValueError::LcsAllocation)?;
    table.resize(cells, 0);
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            table[i * width + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let total = table[a.len() * width + b.len()];
    if options.len && !options.idx {
        return Ok(LcsReply::Length(u64::from(total)));
    }

    let mut sequence = vec![0u8; total as usize];
    let mut matches = Vec::new();
    let mut remaining = total as usize;
    let unset = a.len() as u32;
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (unset, 0u32, 0u32, 0u32);
    let (mut i, mut j) = (a.len(), b.len());
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            sequence[remaining - 1] = a[i - 1];
            let (ai, bj) = (i as u32 - 1, j as u32 - 1);
            if a_start == unset {
                (a_start, a_end, b_start, b_end) = (ai, ai, bj, bj);
            } else if a_start == ai + 1 && b_start == bj + 1 {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            remaining -= 1;
            i -= 1;
            j -= 1;
        } else {
            if table[(i - 1) * width + j] > table[i * width + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != unset {
                emit = true;
            }
        }
        let match_len = a_end.wrapping_sub(a_start).wrapping_add(1);
        if emit {
            if options.min_match_len == 0 || u64::from(match_len) >= options.min_match_len {
                matches.push(LcsMatch {
                    a: (a_start, a_end),
                    b: (b_start, b_end),
                    len: match_len,
                });
            }
            a_start = unset;
        }
    }
    if options.idx {
        Ok(LcsReply::Matches {
            matches,
            len: u64::from(total),
            with_match_len: options.with_match_len,
        })
    } else {
        Ok(LcsReply::Sequence(sequence))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_documentation_example() {
        let (a, b) = (b"ohmytext", b"mynewtext");
        let plain = LcsOptions::default();
        assert_eq!(
            lcs(a, b, &plain, 1 << 29),
            Ok(LcsReply::Sequence(b"mytext".to_vec()))
        );
        let len = parse_lcs_options(&[b"LEN"]).unwrap();
        assert_eq!(lcs(a, b, &len, 1 << 29), Ok(LcsReply::Length(6)));
        let idx = parse_lcs_options(&[&b"IDX"[..], b"MINMATCHLEN", b"4", b"WITHMATCHLEN"]).unwrap();
        assert_eq!(
            lcs(a, b, &idx, 1 << 29),
            Ok(LcsReply::Matches {
                matches: vec![LcsMatch {
                    a: (4, 7),
                    b: (5, 8),
                    len: 4
                }],
                len: 6,
                with_match_len: true,
            })
        );
        let idx = parse_lcs_options(&[b"idx"]).unwrap();
        let Ok(LcsReply::Matches { matches, .. }) = lcs(a, b, &idx, 1 << 29) else {
            panic!("expected matches");
        };
        assert_eq!(
            matches,
            vec![
                LcsMatch {
                    a: (4, 7),
                    b: (5, 8),
                    len: 4
                },
                LcsMatch {
                    a: (2, 3),
                    b: (0, 1),
                    len: 2
                },
            ]
        );
    }

    #[test]
    fn option_errors_and_limits() {
        assert_eq!(
            parse_lcs_options(&[&b"LEN"[..], b"IDX"]),
            Err(ValueError::LcsLenAndIdx)
        );
        assert_eq!(
            parse_lcs_options(&[b"MINMATCHLEN"]),
            Err(ValueError::Syntax)
        );
        assert_eq!(
            parse_lcs_options(&[&b"MINMATCHLEN"[..], b"x"]),
            Err(ValueError::NotInteger)
        );
        assert_eq!(parse_lcs_options(&[b"FOO"]), Err(ValueError::Syntax));
        assert_eq!(
            lcs(
                &[0; 100],
                &[0; 100],
                &LcsOptions::default(),
                4 * 101 * 101 - 1
            ),
            Err(ValueError::LcsMemory)
        );
        assert!(lcs(&[0; 100], &[0; 100], &LcsOptions::default(), 4 * 101 * 101).is_ok());
    }
}
