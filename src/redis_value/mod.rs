//! Pure string-value logic for the Redis (RESP) commands, matching Redis 7.0.15 byte for byte.
//!
//! Each file holds one concept and works over byte slices only: no store, no I/O, no clock. The
//! RESP command glue parses a request, calls these functions inside a store transaction, and
//! turns the result (or a [`ValueError`]) into a reply. Keeping them pure lets every rule be
//! tested in isolation and compared against a live `redis-server`.
//!
//! - [`integer`] — `string2ll` and the INCR/DECR family's arithmetic.
//! - [`long_double`] — INCRBYFLOAT on an exact emulation of x87 80-bit `long double`.
//! - [`glob`] — `stringmatchlen`, the KEYS/SCAN MATCH glob.
//! - [`range`] — GETRANGE index normalisation and SETRANGE/APPEND length rules.
//! - [`bits`] — GETBIT/SETBIT/BITCOUNT/BITPOS.
//! - [`lcs`] — LCS and its options.
//! - [`encoding`] — what OBJECT ENCODING reports for a string value.
//! - [`human`] — byte counts as INFO prints them for a human (`maxmemory_human`).
//!
//! These functions must never panic on any input and must never allocate more than the
//! limits they are given allow (the LCS table and SETRANGE padding are checked first).

mod big_natural;
pub mod bits;
pub mod encoding;
pub mod glob;
pub mod human;
pub mod integer;
pub mod lcs;
pub mod long_double;
pub mod range;

/// Redis's `proto-max-bulk-len` default (512 MB): the largest string Redis lets a command build.
pub const PROTO_MAX_BULK_LEN: u64 = 512 * 1024 * 1024;

/// Every error the string commands can return. `Display` is Redis's exact error text (the
/// reply is `-` followed by it), except [`ValueError::ExceedsMaxValueSize`], which is ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// An argument or stored value is not a 64-bit integer (or a `long` where Redis wants one).
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// INCR/DECR/INCRBY/DECRBY would leave the signed 64-bit range.
    #[error("ERR increment or decrement would overflow")]
    IncrDecrOverflow,
    /// DECRBY with `i64::MIN`, whose negation does not exist.
    #[error("ERR decrement would overflow")]
    DecrementOverflow,
    /// INCRBYFLOAT: the stored value or the increment is not a valid `long double`.
    #[error("ERR value is not a valid float")]
    NotValidFloat,
    /// INCRBYFLOAT: the sum is NaN or infinite.
    #[error("ERR increment would produce NaN or Infinity")]
    NanOrInfinity,
    /// SETRANGE with a negative offset.
    #[error("ERR offset is out of range")]
    OffsetOutOfRange,
    /// SETRANGE/APPEND would build a string longer than `proto-max-bulk-len`.
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    ExceedsProtoMaxBulkLen,
    /// The result would be longer than this server's own maximum value size (not a Redis error).
    #[error("ERR string exceeds maximum allowed size ({max} bytes, --max-value-bytes)")]
    ExceedsMaxValueSize {
        /// The configured limit in bytes.
        max: usize,
    },
    /// GETBIT/SETBIT offset not an integer, negative, or past `proto-max-bulk-len` bytes.
    #[error("ERR bit offset is not an integer or out of range")]
    BitOffset,
    /// SETBIT value other than 0 or 1.
    #[error("ERR bit is not an integer or out of range")]
    BitValue,
    /// BITPOS bit argument other than 0 or 1.
    #[error("ERR The bit argument must be 1 or 0.")]
    BitArgument,
    /// Wrong number or kind of options.
    #[error("ERR syntax error")]
    Syntax,
    /// LCS given both LEN and IDX.
    #[error("ERR If you want both the length and indexes, please just use IDX.")]
    LcsLenAndIdx,
    /// LCS input of 2^32-2 bytes or more.
    #[error("ERR String too long for LCS")]
    LcsStringTooLong,
    /// LCS on a key holding something other than a string.
    #[error("ERR The specified keys must contain string values")]
    LcsNotStrings,
    /// LCS table could not be allocated.
    #[error("ERR Insufficient memory, failed allocating transient memory for LCS")]
    LcsAllocation,
    /// LCS table larger than the transient-memory limit.
    #[error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")]
    LcsMemory,
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// Random bytes biased towards the characters each parser cares about.
    fn random_bytes(rng: &mut StdRng) -> Vec<u8> {
        const INTERESTING: &[u8] = b"0123456789-+.eExXpP*?[]^\\ aZ\x00\xff";
        let len = rng.gen_range(0..24);
        (0..len)
            .map(|_| {
                if rng.gen_bool(0.8) {
                    INTERESTING[rng.gen_range(0..INTERESTING.len())]
                } else {
                    rng.gen()
                }
            })
            .collect()
    }

    /// Every entry point on arbitrary input returns (an error at worst) instead of panicking.
    #[test]
    fn arbitrary_input_never_panics() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..20_000 {
            let (a, b) = (random_bytes(&mut rng), random_bytes(&mut rng));
            let args: Vec<Vec<u8>> = (0..rng.gen_range(0..5))
                .map(|_| random_bytes(&mut rng))
                .collect();
            let _ = integer::apply_increment(Some(&a), rng.gen());
            let _ = integer::decrby_increment(&b);
            let _ = long_double::incr_by_float(Some(&a), &b);
            let _ = glob::glob_match(&a, &b, rng.gen());
            let _ = range::getrange(a.len(), rng.gen(), rng.gen());
            let _ = range::setrange_offset(&b);
            let _ = range::setrange(Some(&a), rng.gen_range(0..64), &b, 1 << 10);
            let _ = bits::bit_offset(&b);
            let _ = bits::bitcount(Some(&a), &args);
            let _ = bits::bitpos(Some(&a), &args);
            let _ = lcs::parse_lcs_options(&args);
            let _ = lcs::lcs(
                &a,
                &b,
                &lcs::LcsOptions {
                    idx: true,
                    ..Default::default()
                },
                1 << 20,
            );
            let _ = encoding::string_encoding(&a, encoding::ValueOrigin::Set);
        }
    }
}
