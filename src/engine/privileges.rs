//! `--user` / `--group`: started as root to bind privileged ports, the relay becomes an
//! unprivileged user once its listening sockets exist and before any client is served.

use std::ffi::CString;
use std::io;

/// The identity to run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    /// Resolves `user` (a name or a number) and `group` (a name or a number; default: the
    /// user's primary group). Called at start-up, before any thread exists, so the
    /// non-reentrant getpwnam/getgrnam are safe here.
    pub fn resolve(user: &str, group: Option<&str>) -> Result<RunAs, String> {
        let (uid, primary) = match user.parse::<u32>() {
            Ok(uid) => (uid, None),
            Err(_) => {
                let name = CString::new(user).map_err(|_| format!("bad user name {user:?}"))?;
                // SAFETY: getpwnam with a NUL-terminated name; the record is read at once.
                let pw = unsafe { libc::getpwnam(name.as_ptr()) };
                if pw.is_null() {
                    return Err(format!("no user {user:?}"));
                }
                // SAFETY: non-null record returned by getpwnam, read before any other call.
                unsafe { ((*pw).pw_uid, Some((*pw).pw_gid)) }
            }
        };
        let gid = match group {
            Some(g) => match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => {
                    let name = CString::new(g).map_err(|_| format!("bad group name {g:?}"))?;
                    // SAFETY: as above, for getgrnam.
                    let gr = unsafe { libc::getgrnam(name.as_ptr()) };
                    if gr.is_null() {
                        return Err(format!("no group {g:?}"));
                    }
                    // SAFETY: non-null record returned by getgrnam.
                    unsafe { (*gr).gr_gid }
                }
            },
            None => {
                primary.ok_or_else(|| format!("--user {user} is a number: give --group too"))?
            }
        };
        Ok(RunAs { uid, gid })
    }

    /// Drops supplementary groups, then sets the group, then the user (that order: once
    /// the user is not root, the group can no longer change), and checks it took.
    pub fn apply(self) -> io::Result<()> {
        // SAFETY: plain credential syscalls with valid arguments; glibc applies them to
        // every thread of the process.
        unsafe {
            if libc::setgroups(1, &self.gid) != 0
                || libc::setgid(self.gid) != 0
                || libc::setuid(self.uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if libc::getuid() != self.uid || libc::geteuid() != self.uid || libc::setuid(0) == 0 {
                return Err(io::Error::other("privileges were not dropped"));
            }
        }
        Ok(())
    }
}
