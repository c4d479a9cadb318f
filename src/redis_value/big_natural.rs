//! A minimal arbitrary-precision natural number, just enough for exact `long double` work.
//!
//! [`super::long_double`] needs exact products, sums, shifts and comparisons of numbers up to
//! roughly 33,000 bits (the widest aligned sum of two 80-bit floats) or 10,000 decimal digits
//! (the longest accepted float text times its power of ten). A general bignum crate would do,
//! but the handful of operations here is small, and keeping them in-tree keeps the dependency
//! list unchanged. Little-endian `u64` limbs, always trimmed (no high zero limbs), so zero is
//! the empty vector. Never panics: subtraction is only called with a smaller right side.

use std::cmp::Ordering;

/// A natural number (>= 0) of any size.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct BigNatural {
    limbs: Vec<u64>,
}

impl BigNatural {
    pub(crate) fn from_u128(value: u128) -> Self {
        let mut number = BigNatural {
            limbs: vec![value as u64, (value >> 64) as u64],
        };
        number.trim();
        number
    }

    fn trim(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.limbs.is_empty()
    }

    /// Number of significant bits (0 for zero).
    pub(crate) fn bit_len(&self) -> u64 {
        match self.limbs.last() {
            None => 0,
            Some(top) => self.limbs.len() as u64 * 64 - u64::from(top.leading_zeros()),
        }
    }

    /// `self = self * factor + addend`.
    pub(crate) fn mul_add_small(&mut self, factor: u64, addend: u64) {
        let mut carry = u128::from(addend);
        for limb in &mut self.limbs {
            let wide = u128::from(*limb) * u128::from(factor) + carry;
            *limb = wide as u64;
            carry = wide >> 64;
        }
        if carry != 0 {
            self.limbs.push(carry as u64);
        }
        self.trim();
    }

    /// `10^exponent`.
    pub(crate) fn power_of_ten(exponent: u32) -> Self {
        let mut number = BigNatural::from_u128(1);
        let mut left = exponent;
        while left > 0 {
            let step = left.min(19);
            number.mul_add_small(10u64.pow(step), 0);
            left -= step;
        }
        number
    }

    /// `self << bits`.
    pub(crate) fn shifted_left(&self, bits: u64) -> Self {
        if self.is_zero() {
            return BigNatural::default();
        }
        let limb_shift = (bits / 64) as usize;
        let bit_shift = (bits % 64) as u32;
        let mut limbs = vec![0u64; limb_shift];
        limbs.reserve(self.limbs.len() + 1);
        if bit_shift == 0 {
            limbs.extend_from_slice(&self.limbs);
        } else {
            let mut carry = 0u64;
            for &limb in &self.limbs {
                limbs.push((limb << bit_shift) | carry);
                carry = limb >> (64 - bit_shift);
            }
            limbs.push(carry);
        }
        let mut number = BigNatural { limbs };
        number.trim();
        number
    }

    /// `self >>= 1`.
    pub(crate) fn halve(&mut self) {
        let mut carry = 0u64;
        for limb in self.limbs.iter_mut().rev() {
            let next_carry = *limb << 63;
            *limb = (*limb >> 1) | carry;
            carry = next_carry;
        }
        self.trim();
    }

    /// `self + other`.
    pub(crate) fn plus(&self, other: &Self) -> Self {
        let (long, short) = if self.limbs.len() >= other.limbs.len() {
            (self, other)
        } else {
            (other, self)
        };
        let mut limbs = Vec::with_capacity(long.limbs.len() + 1);
        let mut carry = false;
        for (index, &limb) in long.limbs.iter().enumerate() {
            let addend = short.limbs.get(index).copied().unwrap_or(0);
            let (partial, overflow_a) = limb.overflowing_add(addend);
            let (sum, overflow_b) = partial.overflowing_add(u64::from(carry));
            limbs.push(sum);
            carry = overflow_a || overflow_b;
        }
        if carry {
            limbs.push(1);
        }
        BigNatural { limbs }
    }

    /// `self -= other`; the caller guarantees `other <= self`.
    pub(crate) fn subtract(&mut self, other: &Self) {
        let mut borrow = false;
        for (index, limb) in self.limbs.iter_mut().enumerate() {
            let subtrahend = other.limbs.get(index).copied().unwrap_or(0);
            let (partial, borrow_a) = limb.overflowing_sub(subtrahend);
            let (difference, borrow_b) = partial.overflowing_sub(u64::from(borrow));
            *limb = difference;
            borrow = borrow_a || borrow_b;
        }
        self.trim();
    }

    /// Divides in place by a small divisor and returns the remainder.
    pub(crate) fn divide_small(&mut self, divisor: u64) -> u64 {
        let mut remainder = 0u128;
        for limb in self.limbs.iter_mut().rev() {
            let wide = (remainder << 64) | u128::from(*limb);
            *limb = (wide / u128::from(divisor)) as u64;
            remainder = wide % u128::from(divisor);
        }
        self.trim();
        remainder as u64
    }

    /// Decimal digits, "0" for zero.
    pub(crate) fn to_decimal(&self) -> String {
        const CHUNK: u64 = 10_000_000_000_000_000_000;
        let mut rest = self.clone();
        let mut chunks = Vec::new();
        while !rest.is_zero() {
            chunks.push(rest.divide_small(CHUNK));
        }
        let mut text = match chunks.pop() {
            None => return "0".to_string(),
            Some(top) => top.to_string(),
        };
        for chunk in chunks.iter().rev() {
            text.push_str(&format!("{chunk:019}"));
        }
        text
    }

    /// The value if it fits in 128 bits.
    #[cfg(test)]
    pub(crate) fn to_u128(&self) -> Option<u128> {
        match self.limbs.as_slice() {
            [] => Some(0),
            [low] => Some(u128::from(*low)),
            [low, high] => Some(u128::from(*low) | (u128::from(*high) << 64)),
            _ => None,
        }
    }
}

impl PartialOrd for BigNatural {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BigNatural {
    fn cmp(&self, other: &Self) -> Ordering {
        self.limbs
            .len()
            .cmp(&other.limbs.len())
            .then_with(|| self.limbs.iter().rev().cmp(other.limbs.iter().rev()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_matches_u128() {
        let a = BigNatural::from_u128(123_456_789_012_345_678_901_234_567);
        let b = BigNatural::from_u128(987_654_321_098_765_432);
        assert_eq!(
            a.plus(&b).to_u128(),
            Some(123_456_789_012_345_678_901_234_567 + 987_654_321_098_765_432)
        );
        let mut c = a.clone();
        c.subtract(&b);
        assert_eq!(
            c.to_u128(),
            Some(123_456_789_012_345_678_901_234_567 - 987_654_321_098_765_432)
        );
        assert_eq!(
            b.shifted_left(7).to_u128(),
            Some(987_654_321_098_765_432 << 7)
        );
        assert_eq!(
            BigNatural::power_of_ten(30).to_decimal(),
            format!("1{}", "0".repeat(30))
        );
        assert_eq!(a.to_decimal(), "123456789012345678901234567");
        assert!(a > b);
        let mut d = b.shifted_left(100);
        for _ in 0..100 {
            d.halve();
        }
        assert_eq!(d, b);
    }
}
