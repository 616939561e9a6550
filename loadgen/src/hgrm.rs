//! HdrHistogram's percentile-distribution text format (`.hgrm`), the files HdrHistogram's own
//! plotter and tools read. Values are written in milliseconds (the histograms hold ns).

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// ns per written unit (ms).
const SCALE: f64 = 1e6;

/// The `.hgrm` text of `h`: 5 ticks per half distance, like `outputPercentileDistribution`.
pub fn render(h: &Histogram<u64>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            let value = h.highest_equivalent(v.value_iterated_to()) as f64 / SCALE;
            let q = v.quantile_iterated_to();
            let total = h.count_between(0, v.value_iterated_to());
            if q < 1.0 {
                let _ = writeln!(
                    s,
                    "{value:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(s, "{value:12.3} {q:2.12} {total:10}");
            }
        }
    }
    let mean = h.mean() / SCALE;
    let stdev = h.stdev() / SCALE;
    let max = h.max() as f64 / SCALE;
    let _ = writeln!(s, "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]");
    let _ = writeln!(
        s,
        "#[Max     = {max:12.3}, Total count    = {:12}]",
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        h.distinct_values()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_reaches_the_max_and_counts_everything() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        for i in 1..=1000u64 {
            h.record(i * 1_000_000).unwrap(); // 1..1000 ms
        }
        let text = render(&h);
        let rows: Vec<Vec<f64>> = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.contains("Value"))
            .map(|l| l.split_whitespace().map(|f| f.parse().unwrap()).collect())
            .collect();
        let last = rows.last().unwrap();
        assert!((last[0] - 1000.0).abs() < 1.0, "last value {}", last[0]);
        assert_eq!(last[1], 1.0);
        assert_eq!(last[2], 1000.0);
        let median = rows.iter().find(|r| r[1] >= 0.5).unwrap();
        assert!((median[0] - 500.0).abs() < 1.0, "median {}", median[0]);
        assert!(rows
            .windows(2)
            .all(|w| w[0][0] <= w[1][0] && w[0][2] <= w[1][2]));
        assert!(text.contains("Total count    =         1000"));
    }
}
