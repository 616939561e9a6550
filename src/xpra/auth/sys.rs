//! The system lookups routing needs: a user's home, the host name.
//!
//! Thin, reentrant libc calls (`getpwuid_r`, `gethostname`);
//! every failure is `None`, never a panic.

use std::ffi::{CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Largest buffer we grow to for one passwd/group record.
const MAX_RECORD: usize = 1 << 20;

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
    fn root_resolves() {
        assert_eq!(home_of(0), Some(PathBuf::from("/root")));
        assert!(hostname().is_some_and(|h| !h.is_empty()));
    }
}
