//! Token-range splits of the Murmur3 ring, sized from Cassandra's size estimates.
//!
//! Murmur3 tokens are `i64`; `i64::MIN` is never a partition's token, so the ring is covered by
//! the half-open ranges `(start, end]` from `i64::MIN` to `i64::MAX`.

/// One split of the ring: rows with `start < token(pk) <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRange {
    /// Exclusive lower bound.
    pub start: i64,
    /// Inclusive upper bound.
    pub end: i64,
}

/// Most splits a scan uses: past this, per-query overhead outweighs balance.
pub const MAX_SPLITS: usize = 16_384;

/// How many splits to scan: enough that each holds about `split_bytes` of the table's estimated
/// size, and at least four per parallel reader so a slow split does not leave readers idle.
pub fn split_count(estimated_bytes: u64, split_bytes: u64, parallelism: usize) -> usize {
    let by_size = estimated_bytes.div_ceil(split_bytes.max(1)) as usize;
    by_size.max(parallelism.max(1) * 4).clamp(1, MAX_SPLITS)
}

/// Cuts the whole ring into `n` contiguous ranges of (nearly) equal width.
pub fn split_ring(n: usize) -> Vec<TokenRange> {
    let n = n.max(1) as i128;
    let (min, max) = (i64::MIN as i128, i64::MAX as i128);
    let width = max - min;
    let bound = |k: i128| (min + width * k / n) as i64;
    (0..n)
        .map(|k| TokenRange {
            start: bound(k),
            end: if k + 1 == n { i64::MAX } else { bound(k + 1) },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_ring_without_gaps_or_overlap() {
        for n in [1, 2, 3, 7, 64, 1000] {
            let ranges = split_ring(n);
            assert_eq!(ranges.len(), n);
            assert_eq!(ranges[0].start, i64::MIN);
            assert_eq!(ranges[n - 1].end, i64::MAX);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].end, pair[1].start, "contiguous");
            }
            assert!(ranges.iter().all(|r| r.start < r.end), "non-empty");
        }
    }

    #[test]
    fn ranges_have_nearly_equal_width() {
        let ranges = split_ring(7);
        let widths: Vec<i128> = ranges.iter().map(|r| r.end as i128 - r.start as i128).collect();
        let (lo, hi) = (widths.iter().min().unwrap(), widths.iter().max().unwrap());
        assert!(hi - lo <= 1, "{widths:?}");
    }

    #[test]
    fn split_count_follows_size_with_a_floor_per_reader() {
        // Unknown size (no estimates yet): four splits per reader.
        assert_eq!(split_count(0, 64 << 20, 8), 32);
        // 10 GiB in 64 MiB splits.
        assert_eq!(split_count(10 << 30, 64 << 20, 8), 160);
        assert_eq!(split_count(u64::MAX, 1, 8), MAX_SPLITS);
        assert_eq!(split_count(0, 0, 0), 4);
    }
}
