//! Nearest-rank percentiles, the one definition every table and API in frontline uses.

/// The `q`-quantile (0..=1) of sorted data by the nearest-rank method: always a value that was
/// observed, which is what "p95 of 20 calls" should mean (the 19th slowest, not an
/// interpolation). None for no data.
pub fn percentile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    // Less a hair, so a product that binary floating point rounds up (0.07 x 100 =
    // 7.000000000000001) does not take the next rank.
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64 - 1e-9).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_is_an_observed_value() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!((percentile(&v, 0.5), percentile(&v, 0.9), percentile(&v, 0.99)), (Some(50), Some(90), Some(99)));
        assert_eq!(percentile::<u64>(&[], 0.5), None);
        assert_eq!(percentile(&[7u64], 0.99), Some(7));
        assert_eq!(percentile(&[1.0f64, 2.0], 0.0), Some(1.0));
        let f: Vec<f32> = (1..=20).map(|x| x as f32).collect();
        assert_eq!(percentile(&f, 0.95), Some(19.0));
        assert_eq!(percentile(&v, 0.07), Some(7));
    }
}
