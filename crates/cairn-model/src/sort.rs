//! Sorting vectors of large values (findings, components): the positions are
//! sorted, and each value is moved twice, not about log n times.

use std::cmp::Ordering;

/// Sorts `values` stably by `compare`, with the result of `values.sort_by(compare)`,
/// but the sort moves positions, not values: the positions are sorted, then the
/// values are taken in that order (each value moved twice whatever the length).
/// A sort moves its elements about log n times each; for values of a few
/// hundred bytes those copies cost more than the comparisons (a 908-crate scan
/// spent 3.0 M instructions sorting its findings and components, most of them
/// in `memcpy`). Input that is already in order is only checked.
pub fn sort_large_by<T>(values: &mut Vec<T>, mut compare: impl FnMut(&T, &T) -> Ordering) {
    if values.is_sorted_by(|a, b| compare(a, b).is_le()) {
        return;
    }
    let mut order: Vec<usize> = (0..values.len()).collect();
    // Stable: equal values keep their positions' order.
    order.sort_by(|&a, &b| compare(&values[a], &values[b]));
    let mut slots: Vec<Option<T>> = std::mem::take(values).into_iter().map(Some).collect();
    // `order` is a permutation: every slot is taken exactly once.
    values.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic sequence (xorshift), so a failure reproduces.
    fn numbers(seed: u64, n: usize) -> Vec<u64> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            })
            .collect()
    }

    /// The same order as `sort_by`, equal keys included (stability), on
    /// sorted, reversed, random and few-distinct-key input of every length
    /// up to 300, with values that own heap memory (nothing lost or doubled).
    #[test]
    fn the_order_is_sort_by_s_stable_order() {
        for n in 0..300 {
            for (case, keys) in [
                ("sorted", (0..n as u64).collect::<Vec<_>>()),
                ("reversed", (0..n as u64).rev().collect()),
                ("random", numbers(n as u64 + 7, n)),
                (
                    "few keys",
                    numbers(n as u64 + 11, n).iter().map(|k| k % 5).collect(),
                ),
            ] {
                // (key, the position it started at, a heap-owned payload)
                let values: Vec<(u64, usize, String)> = keys
                    .iter()
                    .enumerate()
                    .map(|(i, &k)| (k, i, format!("value {i}")))
                    .collect();
                let mut expected = values.clone();
                expected.sort_by_key(|a| a.0);
                let mut got = values;
                sort_large_by(&mut got, |a, b| a.0.cmp(&b.0));
                assert_eq!(got, expected, "{case}, {n} values");
            }
        }
    }
}
