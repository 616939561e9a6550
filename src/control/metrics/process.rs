//! The process's own figures, read from `/proc/self` at each scrape: open descriptors,
//! resident memory, CPU time. Each is `None` where it cannot be read (and is then left out).

use std::io;

/// What a scrape reports about the process.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Process {
    pub open_fds: Option<u64>,
    /// The soft `RLIMIT_NOFILE`.
    pub max_fds: Option<u64>,
    pub resident_bytes: Option<u64>,
    /// User plus system time, in seconds.
    pub cpu_seconds: Option<f64>,
}

impl Process {
    pub fn read() -> Self {
        Self {
            open_fds: open_fds().ok(),
            max_fds: max_fds(),
            resident_bytes: resident_bytes().ok(),
            cpu_seconds: cpu_seconds().ok(),
        }
    }
}

/// Entries of `/proc/self/fd`, less the one the listing itself holds open.
fn open_fds() -> io::Result<u64> {
    let n = std::fs::read_dir("/proc/self/fd")?.count() as u64;
    Ok(n.saturating_sub(1))
}

fn max_fds() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we pass a pointer to.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    (ok && lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

/// The second field of `/proc/self/statm` (resident pages) times the page size.
fn resident_bytes() -> io::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| io::Error::other("unexpected /proc/self/statm"))?;
    Ok(pages * sysconf(libc::_SC_PAGESIZE)?)
}

/// `utime + stime` of `/proc/self/stat` (fields 14 and 15, in clock ticks).
fn cpu_seconds() -> io::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    cpu_ticks(&stat)
        .map(|ticks| ticks as f64 / sysconf(libc::_SC_CLK_TCK).unwrap_or(100) as f64)
        .ok_or_else(|| io::Error::other("unexpected /proc/self/stat"))
}

/// The command name (field 2) is in parentheses and may hold spaces and parentheses: the
/// fields are counted from the last `)`, where field 3 starts.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn sysconf(name: libc::c_int) -> io::Result<u64> {
    // SAFETY: sysconf only reads a configuration value.
    let v = unsafe { libc::sysconf(name) };
    if v > 0 {
        Ok(v as u64)
    } else {
        Err(io::Error::other("sysconf"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_fields_are_counted_from_the_last_parenthesis() {
        let stat = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 25 7 0 0 20 0 1 0 99";
        assert_eq!(cpu_ticks(stat), Some(32));
        assert_eq!(cpu_ticks("42 (truncated"), None);
    }

    #[test]
    fn this_process_has_descriptors_memory_and_cpu_time() {
        let p = Process::read();
        assert!(p.open_fds.unwrap() >= 3, "{p:?}"); // stdin, stdout, stderr at least
        assert!(p.resident_bytes.unwrap() > 1 << 20, "{p:?}");
        assert!(p.cpu_seconds.unwrap() >= 0.0, "{p:?}");
    }
}
