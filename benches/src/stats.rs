//! Latency percentiles of one measured series.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Percentiles in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Samples.
    pub n: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl Percentiles {
    /// From a histogram of nanoseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        Percentiles {
            n: h.len(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// What the probe prints for one case: percentiles and the histogram's buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Case name.
    pub case: String,
    /// Percentiles, ns.
    #[serde(flatten)]
    pub p: Percentiles,
    /// `[value, count]` per non-empty bucket (value: the bucket's highest equivalent, ns).
    pub hist: Vec<[u64; 2]>,
}

impl Measured {
    /// The non-empty buckets of `h`.
    pub fn buckets(h: &Histogram<u64>) -> Vec<[u64; 2]> {
        h.iter_recorded()
            .map(|v| [v.value_iterated_to(), v.count_at_value()])
            .collect()
    }
}

/// A histogram gathering several runs' buckets.
#[derive(Debug, Clone)]
pub struct Merged(Histogram<u64>);

impl Default for Merged {
    fn default() -> Self {
        Merged(Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds"))
    }
}

impl Merged {
    /// Adds one run's buckets.
    pub fn add(&mut self, hist: &[[u64; 2]]) {
        for &[v, c] in hist {
            self.0.saturating_record_n(v, c);
        }
    }

    /// Samples so far.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Percentiles of everything added.
    pub fn percentiles(&self) -> Percentiles {
        Percentiles::of(&self.0)
    }
}
