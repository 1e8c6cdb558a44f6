//! Percentile summaries of samples (latencies in ms, rates).

/// The figures a benchmark table shows for one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
    pub mean: f64,
}

use crate::stats::percentile;

impl Summary {
    /// None for no samples; NaNs are ignored.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        let mut v: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        Some(Summary {
            n: v.len(),
            p50: percentile(&v, 0.5)?,
            p95: percentile(&v, 0.95)?,
            max: *v.last()?,
            mean: v.iter().sum::<f64>() / v.len() as f64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = Summary::of(&v).unwrap();
        assert_eq!((s.n, s.p50, s.p95, s.max), (20, 10.0, 19.0, 20.0));
        assert!((s.mean - 10.5).abs() < 1e-9);
        // unsorted input, a single sample, nothing
        assert_eq!(Summary::of(&[300.0, 100.0, 200.0]).unwrap().p50, 200.0);
        assert_eq!(Summary::of(&[7.0]).unwrap().p95, 7.0);
        assert_eq!(Summary::of(&[]), None);
    }
}
