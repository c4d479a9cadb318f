//! [`EvictionPolicy`]: Redis's `maxmemory-policy` names and what each one may evict.
//!
//! Must never: accept a name Redis 7.0 does not, or let a `volatile-*` policy pick a key
//! without a TTL.

use std::fmt;

/// What the store does when a write needs room past the memory cap (Redis's
/// `maxmemory-policy`, with its names and meanings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum EvictionPolicy {
    /// Refuse the write (HTTP 507, Redis's OOM error). The default: a database, not a cache.
    #[default]
    NoEviction = 0,
    /// Evict the least recently used key.
    AllKeysLru = 1,
    /// Evict the least frequently used key.
    AllKeysLfu = 2,
    /// Evict a random key.
    AllKeysRandom = 3,
    /// Evict the least recently used key among those with a TTL.
    VolatileLru = 4,
    /// Evict the least frequently used key among those with a TTL.
    VolatileLfu = 5,
    /// Evict a random key among those with a TTL.
    VolatileRandom = 6,
    /// Evict the key with a TTL that expires soonest.
    VolatileTtl = 7,
}

/// How a policy ranks the keys it may evict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    /// Longest since last access first.
    Recency,
    /// Lowest (decayed) access frequency first.
    Frequency,
    /// Any order.
    Random,
    /// Soonest deadline first.
    Deadline,
}

/// A policy name Redis does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown eviction policy {0:?} (expected one of: volatile-lru, volatile-lfu, volatile-random, \
     volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction)"
)]
pub struct UnknownPolicy(pub String);

impl EvictionPolicy {
    /// Every policy, in Redis's order (`CONFIG SET`'s error lists them so).
    pub const ALL: [EvictionPolicy; 8] = [
        EvictionPolicy::VolatileLru,
        EvictionPolicy::VolatileLfu,
        EvictionPolicy::VolatileRandom,
        EvictionPolicy::VolatileTtl,
        EvictionPolicy::AllKeysLru,
        EvictionPolicy::AllKeysLfu,
        EvictionPolicy::AllKeysRandom,
        EvictionPolicy::NoEviction,
    ];

    /// Redis's name for the policy.
    pub const fn name(self) -> &'static str {
        match self {
            EvictionPolicy::NoEviction => "noeviction",
            EvictionPolicy::AllKeysLru => "allkeys-lru",
            EvictionPolicy::AllKeysLfu => "allkeys-lfu",
            EvictionPolicy::AllKeysRandom => "allkeys-random",
            EvictionPolicy::VolatileLru => "volatile-lru",
            EvictionPolicy::VolatileLfu => "volatile-lfu",
            EvictionPolicy::VolatileRandom => "volatile-random",
            EvictionPolicy::VolatileTtl => "volatile-ttl",
        }
    }

    /// The policy named `name` (ASCII case ignored, as Redis's enum configs do).
    pub fn parse(name: &str) -> Result<EvictionPolicy, UnknownPolicy> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownPolicy(name.to_string()))
    }

    /// Whether the policy evicts at all.
    pub const fn evicts(self) -> bool {
        !matches!(self, EvictionPolicy::NoEviction)
    }

    /// Whether only keys with a TTL may be evicted.
    pub const fn volatile_only(self) -> bool {
        matches!(
            self,
            EvictionPolicy::VolatileLru
                | EvictionPolicy::VolatileLfu
                | EvictionPolicy::VolatileRandom
                | EvictionPolicy::VolatileTtl
        )
    }

    /// How the policy ranks candidates (`None` for `noeviction`).
    pub const fn ranking(self) -> Option<Ranking> {
        match self {
            EvictionPolicy::NoEviction => None,
            EvictionPolicy::AllKeysLru | EvictionPolicy::VolatileLru => Some(Ranking::Recency),
            EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu => Some(Ranking::Frequency),
            EvictionPolicy::AllKeysRandom | EvictionPolicy::VolatileRandom => Some(Ranking::Random),
            EvictionPolicy::VolatileTtl => Some(Ranking::Deadline),
        }
    }

    /// Whether reads keep a frequency counter (LFU) rather than a last-access time.
    pub const fn counts_frequency(self) -> bool {
        matches!(self.ranking(), Some(Ranking::Frequency))
    }

    pub(crate) fn from_u8(raw: u8) -> EvictionPolicy {
        Self::ALL
            .into_iter()
            .find(|p| *p as u8 == raw)
            .unwrap_or_default()
    }
}

impl fmt::Display for EvictionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for EvictionPolicy {
    type Err = UnknownPolicy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EvictionPolicy::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_policy_and_unknown_names_are_refused() {
        for policy in EvictionPolicy::ALL {
            assert_eq!(EvictionPolicy::parse(policy.name()), Ok(policy));
            assert_eq!(EvictionPolicy::from_u8(policy as u8), policy);
        }
        assert_eq!(
            EvictionPolicy::parse("ALLKEYS-LRU"),
            Ok(EvictionPolicy::AllKeysLru)
        );
        assert!(EvictionPolicy::parse("lru").is_err());
        assert!(!EvictionPolicy::NoEviction.evicts());
        assert!(EvictionPolicy::VolatileTtl.volatile_only());
        assert!(!EvictionPolicy::AllKeysRandom.volatile_only());
    }
}
