//! The few system lookups auth needs: uid/gid by name, a user's home, the host name.
//!
//! Thin, reentrant libc calls (`getpwnam_r`, `getgrnam_r`, `getpwuid_r`, `gethostname`);
//! every failure is `None`, never a panic.

use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Largest buffer we grow to for one passwd/group record.
const MAX_RECORD: usize = 1 << 20;

/// The uid of user `name`.
pub fn uid_by_name(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    with_passwd(
        |pw, buf, out| {
            // SAFETY: `cname` is NUL-terminated, `pw` and `out` point to live locals, `buf` is
            // a live buffer of `buf.len()` bytes.
            unsafe { libc::getpwnam_r(cname.as_ptr(), pw, buf.as_mut_ptr(), buf.len(), out) }
        },
        |pw| pw.pw_uid,
    )
}

/// The home directory of `uid`.
pub fn home_of(uid: u32) -> Option<PathBuf> {
    with_passwd(
        |pw, buf, out| {
            // SAFETY: `pw` and `out` point to live locals, `buf` is a live buffer of
            // `buf.len()` bytes.
            unsafe { libc::getpwuid_r(uid, pw, buf.as_mut_ptr(), buf.len(), out) }
        },
        |pw| {
            if pw.pw_dir.is_null() {
                return None;
            }
            // SAFETY: on success `pw_dir` is a NUL-terminated string inside the record's
            // buffer, which `with_passwd` keeps alive while this closure runs.
            let bytes = unsafe { CStr::from_ptr(pw.pw_dir) }.to_bytes();
            Some(PathBuf::from(OsStr::from_bytes(bytes)))
        },
    )
    .flatten()
}

/// The gid of group `name`.
pub fn gid_by_name(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: zeroed `group` is a valid out-parameter (plain integers and pointers).
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer refers to a live local or buffer of the stated length.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut gr,
                buf.as_mut_ptr(),
                buf.len(),
                &mut out,
            )
        };
        if rc == libc::ERANGE && buf.len() < MAX_RECORD {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        return (rc == 0 && !out.is_null()).then_some(gr.gr_gid);
    }
}

/// The host name, as xpra puts it in socket names (`XPRA_SOCKET_HOSTNAME` overrides it).
pub fn hostname() -> Option<String> {
    if let Ok(h) = std::env::var("XPRA_SOCKET_HOSTNAME") {
        return Some(h);
    }
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is a live, writable buffer of the length passed.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0)?;
    String::from_utf8(buf[..end].to_vec()).ok()
}

/// Runs a `get*_r` passwd call with a growing buffer; `read` sees the record while its
/// strings (which point into the buffer) are still valid.
fn with_passwd<T>(
    mut call: impl FnMut(*mut libc::passwd, &mut [libc::c_char], *mut *mut libc::passwd) -> i32,
    read: impl FnOnce(&libc::passwd) -> T,
) -> Option<T> {
    let mut buf = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: zeroed `passwd` is a valid out-parameter (plain integers and pointers).
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let rc = call(&mut pw, &mut buf, &mut out);
        if rc == libc::ERANGE && buf.len() < MAX_RECORD {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        return (rc == 0 && !out.is_null()).then(|| read(&pw));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_and_nonsense_does_not() {
        assert_eq!(uid_by_name("root"), Some(0));
        assert_eq!(gid_by_name("root"), Some(0));
        assert_eq!(home_of(0), Some(PathBuf::from("/root")));
        assert_eq!(uid_by_name("no such user \u{1}"), None);
        assert_eq!(uid_by_name("nul\0inside"), None);
        assert!(hostname().is_some_and(|h| !h.is_empty()));
    }
}
