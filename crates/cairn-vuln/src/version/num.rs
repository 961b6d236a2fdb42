//! Arbitrary-length decimal numbers, compared by value without overflow.

use std::cmp::Ordering;

/// A non-negative decimal number kept as its digits (leading zeros removed), so
/// `999999999999999999999999999991` compares correctly without a bignum type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Num(String);

impl Num {
    /// `digits` must be ASCII digits only (callers check); empty means zero.
    pub(crate) fn new(digits: &str) -> Self {
        Num(digits.trim_start_matches('0').to_owned())
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.0.is_empty()
    }
}

impl Num {
    /// The digits, without leading zeros.
    pub(crate) fn digits(&self) -> &str {
        &self.0
    }
}

impl Ord for Num {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_digits(&self.0, &other.0)
    }
}

impl PartialOrd for Num {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two strings of ASCII digits by numeric value.
pub(crate) fn cmp_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

pub(crate) fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}
