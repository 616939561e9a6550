//! Prometheus' text exposition format, version 0.0.4: `# HELP` and `# TYPE` once per family,
//! then its samples, `name{label="value",...} number`, one per line.
//!
//! Escaping follows the format: `\` and newline in help text; `\`, `"` and newline in label
//! values. Metric and label names are ours (constants), checked in debug builds only.
//! Numbers: integers as such, floats in Rust's shortest round-trip form, infinities as
//! `+Inf`/`-Inf`, NaN as `NaN`.

use std::fmt::Write;

use crate::control::histogram::Snapshot;

/// The content type of this format, for the `Content-Type` header.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample's value.
#[derive(Debug, Clone, Copy)]
pub enum Number {
    Int(u64),
    Float(f64),
}

impl From<u64> for Number {
    fn from(n: u64) -> Self {
        Number::Int(n)
    }
}

impl From<f64> for Number {
    fn from(n: f64) -> Self {
        Number::Float(n)
    }
}

/// The page being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: its help and type lines. Its samples follow.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        debug_assert!(valid_name(name), "metric name {name:?}");
        let _ = write!(self.out, "# HELP {name} ");
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        let _ = writeln!(self.out, "\n# TYPE {name} {}", kind.as_str());
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<Number>) {
        debug_assert!(valid_name(name), "metric name {name:?}");
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                debug_assert!(valid_name(label) && !label.contains(':'), "label {label:?}");
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(label);
                self.out.push_str("=\"");
                for c in value.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.number(value.into());
        self.out.push('\n');
    }

    /// A whole histogram family: cumulative `_bucket`s up to `le="+Inf"`, `_sum`, `_count`.
    pub fn histogram(&mut self, name: &str, help: &str, snap: &Snapshot) {
        self.family(name, Kind::Histogram, help);
        let bucket = format!("{name}_bucket");
        let mut le = String::new();
        for (bound, count) in snap.cumulative() {
            le.clear();
            push_float(&mut le, bound);
            self.sample(&bucket, &[("le", &le)], count);
        }
        self.sample(&format!("{name}_sum"), &[], snap.sum);
        self.sample(&format!("{name}_count"), &[], snap.count());
    }

    /// The page.
    pub fn finish(self) -> String {
        self.out
    }

    fn number(&mut self, n: Number) {
        match n {
            Number::Int(i) => {
                let _ = write!(self.out, "{i}");
            }
            Number::Float(f) => push_float(&mut self.out, f),
        }
    }
}

fn push_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{f}");
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::histogram::Histogram;
    use std::time::Duration;

    #[test]
    fn families_samples_and_escapes() {
        let mut e = Exposition::new();
        e.family("x_total", Kind::Counter, "a \\ b\nc");
        e.sample("x_total", &[("shard", "0"), ("v", "q\"\\\n")], 7u64);
        e.family("y", Kind::Gauge, "y");
        e.sample("y", &[], 0.5);
        e.sample("y", &[], f64::INFINITY);
        assert_eq!(
            e.finish(),
            "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\n\
             x_total{shard=\"0\",v=\"q\\\"\\\\\\n\"} 7\n\
             # HELP y y\n# TYPE y gauge\ny 0.5\ny +Inf\n"
        );
    }

    #[test]
    fn a_histogram_is_cumulative_and_ends_with_inf_sum_and_count() {
        const B: &[f64] = &[0.0001, 1.0];
        let h = Histogram::new(B);
        h.record(Duration::from_micros(50));
        h.record(Duration::from_secs(2));
        let mut s = Snapshot::empty(B);
        s.add(&h);
        let mut e = Exposition::new();
        e.histogram("t_seconds", "t", &s);
        assert_eq!(
            e.finish(),
            "# HELP t_seconds t\n# TYPE t_seconds histogram\n\
             t_seconds_bucket{le=\"0.0001\"} 1\n\
             t_seconds_bucket{le=\"1\"} 1\n\
             t_seconds_bucket{le=\"+Inf\"} 2\n\
             t_seconds_sum 2.00005\n\
             t_seconds_count 2\n"
        );
    }
}
