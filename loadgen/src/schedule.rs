//! Open-loop schedule: when each message of a direction is due, and how big it is.
//!
//! Due times are fixed in advance (`start + phase + k / rate` per stream); a sender that falls
//! behind sends late but keeps the due time in the header, so the receiver's latency
//! (arrival - due) includes the stall: coordinated-omission correction by construction.

use crate::profile::StreamSpec;

/// A small deterministic generator (xorshift64*), seeded per session and direction.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `min..=max`.
    pub fn range(&mut self, min: u32, max: u32) -> u32 {
        let span = (max - min) as u64 + 1;
        min + (self.next_u64() % span) as u32
    }
}

struct Stream {
    spec: StreamSpec,
    interval_ns: f64,
    first_ns: f64,
    index: u64,
}

/// The merged due times of a direction's streams, up to `end_ns` (exclusive).
pub struct Schedule {
    streams: Vec<Stream>,
    end_ns: u64,
    rng: Rng,
}

impl Schedule {
    /// Streams start at `start_ns` plus a random phase within one interval, so sessions do
    /// not fire in lockstep.
    pub fn new(specs: &[StreamSpec], start_ns: u64, end_ns: u64, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let streams = specs
            .iter()
            .map(|&spec| {
                let interval_ns = 1e9 / spec.rate;
                let phase = (rng.next_u64() % 1_000_000) as f64 / 1e6 * interval_ns;
                Stream {
                    spec,
                    interval_ns,
                    first_ns: start_ns as f64 + phase,
                    index: 0,
                }
            })
            .collect();
        Self {
            streams,
            end_ns,
            rng,
        }
    }

    /// A schedule without phase (tests): stream `k` message `i` is due at `start + i / rate`.
    #[cfg(test)]
    pub fn aligned(specs: &[StreamSpec], start_ns: u64, end_ns: u64) -> Self {
        let mut s = Self::new(specs, start_ns, end_ns, 0);
        for st in &mut s.streams {
            st.first_ns = start_ns as f64;
        }
        s
    }
}

impl Iterator for Schedule {
    /// (due time in ns, payload length).
    type Item = (u64, u32);

    fn next(&mut self) -> Option<(u64, u32)> {
        let due = |s: &Stream| (s.first_ns + s.index as f64 * s.interval_ns) as u64;
        let (i, at) = self
            .streams
            .iter()
            .enumerate()
            .map(|(i, s)| (i, due(s)))
            .min_by_key(|&(_, d)| d)?;
        if at >= self.end_ns {
            return None;
        }
        let s = &mut self.streams[i];
        s.index += 1;
        let (min, max) = (s.spec.min, s.spec.max);
        Some((at, self.rng.range(min, max)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KHZ: StreamSpec = StreamSpec {
        rate: 1000.0,
        min: 64,
        max: 64,
    };

    #[test]
    fn due_times_follow_the_rate() {
        let dues: Vec<u64> = Schedule::aligned(&[KHZ], 5_000, 5_000 + 10_000_000)
            .map(|(d, _)| d)
            .collect();
        assert_eq!(dues.len(), 10);
        for (i, d) in dues.iter().enumerate() {
            assert_eq!(*d, 5_000 + i as u64 * 1_000_000);
        }
    }

    #[test]
    fn streams_merge_in_due_order() {
        let slow = StreamSpec {
            rate: 10.0,
            min: 1000,
            max: 2000,
        };
        let all: Vec<(u64, u32)> = Schedule::new(&[KHZ, slow], 0, 1_000_000_000, 7).collect();
        assert!(all.windows(2).all(|w| w[0].0 <= w[1].0));
        let big = all.iter().filter(|(_, l)| *l >= 1000).count();
        assert_eq!(big, 10);
        assert_eq!(all.len(), 1010);
    }
}
