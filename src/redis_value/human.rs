//! Byte counts as Redis's INFO writes them for a human (`used_memory_human`, `maxmemory_human`,
//! ...): Redis 7.0.15's `bytesToHuman` in `src/server.c`.
//!
//! Below 1024 the count itself with `B` (so `0B` for "no limit"); then two decimals in steps of
//! 1024 with `K`, `M`, `G`, `T` or `P`; from 1024^6 on, the count with `B` again.
//!
//! Must never: round differently from C's `%.2f` (both round the exact binary value to nearest,
//! ties to even).

/// `n` bytes as Redis's INFO prints them for a human.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(u64, char); 5] = [
        (1 << 20, 'K'),
        (1 << 30, 'M'),
        (1 << 40, 'G'),
        (1 << 50, 'T'),
        (1 << 60, 'P'),
    ];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut unit = 1024u64;
    for (below, suffix) in UNITS {
        if n < below {
            return format!("{:.2}{suffix}", n as f64 / unit as f64);
        }
        unit <<= 10;
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn matches_redis_bytes_to_human() {
        // Values seen from Debian's redis-server 7.0.15 (INFO memory) and Redis's own steps.
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1024), "1.00K");
        assert_eq!(human_bytes(1536 * 1024), "1.50M");
        assert_eq!(human_bytes(1_572_864), "1.50M");
        assert_eq!(human_bytes(104_857_600), "100.00M");
        assert_eq!(human_bytes(1536 * 1000), "1.46M");
        assert_eq!(human_bytes(1 << 30), "1.00G");
        assert_eq!(human_bytes((1 << 40) - 1), "1024.00G");
        assert_eq!(human_bytes(1 << 50), "1.00P");
        assert_eq!(human_bytes(1 << 60), "1152921504606846976B");
        assert_eq!(human_bytes(u64::MAX), "18446744073709551615B");
    }
}
