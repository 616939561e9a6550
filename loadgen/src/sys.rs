//! What the operating system says about processes: descriptor limit, CPU time and resident
//! memory of this process and of a relay's process tree (from /proc).

use std::collections::HashMap;
use std::fs;

use anyhow::{bail, Result};

/// Raises RLIMIT_NOFILE so that `need` descriptors fit: the soft limit up to the hard one,
/// and the hard one too when it is lower and this process may (root, CAP_SYS_RESOURCE).
/// Children (the relay) inherit the result. Returns the soft limit now in force.
pub fn raise_nofile(need: u64) -> Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a pointer to a live rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        if lim.rlim_max < need {
            let raised = libc::rlimit {
                rlim_cur: need,
                rlim_max: need,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                bail!("setrlimit: {}", std::io::Error::last_os_error());
            }
        }
    }
    let have: u64 = lim.rlim_cur;
    if have < need {
        bail!(
            "the open-file limit is {have} descriptors and cannot be raised, but this run \
             needs about {need}; raise the hard limit (ulimit -Hn, limits.conf, or run as \
             root) or run fewer sessions"
        );
    }
    Ok(have)
}

/// Clock ticks per second of /proc CPU times.
fn ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime in seconds from a /proc `stat` line (fields after the `(comm)`).
fn stat_cpu(stat: &str) -> Option<(String, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    let utime: f64 = rest.get(11)?.parse().ok()?;
    let stime: f64 = rest.get(12)?.parse().ok()?;
    Some((comm, (utime + stime) / ticks()))
}

/// CPU seconds used by this whole process so far.
pub fn process_cpu() -> Option<f64> {
    stat_cpu(&fs::read_to_string("/proc/self/stat").ok()?).map(|(_, s)| s)
}

/// Parent pid (field 4) and CPU seconds including reaped children (fields 14-17) of a
/// /proc `stat` line.
fn stat_ppid_cpu(stat: &str) -> Option<(u32, f64)> {
    let rest: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ppid = rest.get(1)?.parse().ok()?;
    let mut ticks_sum = 0.0;
    for i in 11..=14 {
        ticks_sum += rest.get(i)?.parse::<f64>().ok()?;
    }
    Some((ppid, ticks_sum / ticks()))
}

/// What a process tree uses right now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// CPU seconds so far: user + system, children that exited included.
    pub cpu_s: f64,
    /// Resident memory of every live process of the tree, summed.
    pub rss_bytes: u64,
}

/// CPU time and resident memory of process `root` and all its live descendants (socat
/// forks a process per connection, so a tree is what a relay is). `None` once `root` is gone.
pub fn tree_usage(root: u32) -> Option<Usage> {
    let mut parent_of = HashMap::new();
    let mut cpu_of = HashMap::new();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((ppid, cpu)) = fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| stat_ppid_cpu(&s))
        {
            parent_of.insert(pid, ppid);
            cpu_of.insert(pid, cpu);
        }
    }
    cpu_of.get(&root)?;
    let in_tree = |mut pid: u32| loop {
        if pid == root {
            return true;
        }
        match parent_of.get(&pid) {
            Some(&p) if p != 0 && p != pid => pid = p,
            _ => return false,
        }
    };
    let page = page_size();
    let mut usage = Usage::default();
    for (&pid, &cpu) in &cpu_of {
        if in_tree(pid) {
            usage.cpu_s += cpu;
            usage.rss_bytes += statm_resident_pages(pid).unwrap_or(0) * page;
        }
    }
    Some(usage)
}

/// Peak resident memory (VmHWM) of one process, in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    status_field(&format!("/proc/{pid}/status"), "VmHWM")
}

fn statm_resident_pages(pid: u32) -> Option<u64> {
    let statm = fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    statm.split_whitespace().nth(1)?.parse().ok()
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// A `Vm*` line of /proc/self/status, in bytes.
pub fn status_bytes(key: &str) -> Option<u64> {
    status_field("/proc/self/status", key)
}

fn status_field(path: &str, key: &str) -> Option<u64> {
    let status = fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_name() {
        let line = "42 (a b) S 1 2 3 4 5 6 7 8 9 10 150 50 0 0 20 0 1 0";
        let (comm, secs) = stat_cpu(line).unwrap();
        assert_eq!(comm, "a b");
        assert!((secs - 200.0 / ticks()).abs() < 1e-9);
    }

    #[test]
    fn reads_own_process() {
        assert!(process_cpu().is_some());
        assert!(status_bytes("VmHWM").unwrap() > 0);
    }

    #[test]
    fn a_tree_includes_its_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id();
        let with_child = tree_usage(me).unwrap();
        let child_alone = tree_usage(child.id()).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(child_alone.rss_bytes > 0);
        assert!(with_child.rss_bytes >= child_alone.rss_bytes + status_bytes("VmRSS").unwrap() / 2);
        assert_eq!(tree_usage(child.id()), None);
    }
}
