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

/// `sysconf(name)`, or `fallback` if the system does not say.
fn sysconf_or(name: libc::c_int, fallback: u64) -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(name) };
    if v > 0 {
        v as u64
    } else {
        fallback
    }
}

/// Clock ticks per second of /proc CPU times.
fn ticks() -> f64 {
    sysconf_or(libc::_SC_CLK_TCK, 100) as f64
}

/// What loadgen reads from a /proc `stat` line.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    ppid: u32,
    /// utime + stime, seconds.
    cpu_s: f64,
    /// cutime + cstime (children that exited and were reaped), seconds.
    children_cpu_s: f64,
}

/// Parses the fields after `(comm)` (comm may hold spaces and parentheses): field 4 is the
/// parent pid, fields 14 to 17 the CPU times in clock ticks.
fn parse_stat(stat: &str) -> Option<Stat> {
    let rest: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3)?.parse::<f64>().ok();
    Some(Stat {
        ppid: rest.get(1)?.parse().ok()?,
        cpu_s: (field(14)? + field(15)?) / ticks(),
        children_cpu_s: (field(16)? + field(17)?) / ticks(),
    })
}

/// CPU seconds used by this whole process so far (not its reaped children: the relay).
pub fn process_cpu() -> Option<f64> {
    parse_stat(&fs::read_to_string("/proc/self/stat").ok()?).map(|s| s.cpu_s)
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
        if let Some(st) = fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| parse_stat(&s))
        {
            parent_of.insert(pid, st.ppid);
            cpu_of.insert(pid, st.cpu_s + st.children_cpu_s);
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
    sysconf_or(libc::_SC_PAGESIZE, 4096)
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
        let st = parse_stat(line).unwrap();
        assert_eq!(st.ppid, 1);
        assert!((st.cpu_s - 200.0 / ticks()).abs() < 1e-9);
        assert_eq!(st.children_cpu_s, 0.0);
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
