//! The control socket (`--control PATH`): a unix stream socket, mode 0600, served by one
//! plain thread (no executor: it never touches a shard).
//!
//! Protocol: the client sends one request line (`info`, `list` or `stop`), the relay answers
//! one line of JSON ([`super::report`]) and closes. An unknown request gets
//! `{"schema":1,"error":"..."}`. So `echo info | socat - UNIX:PATH` works too.
//!
//! At start a socket file that a live relay answers on is left alone and the start fails;
//! one nobody answers on (a relay that died) is removed and replaced.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::report::{Failure, Sources, Stopping, SCHEMA};

/// How long one client may take to send its request and read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest request line read.
const MAX_REQUEST: u64 = 256;

/// Why the control socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("another deskrelay is running with control socket {0} (stop it, or give this one another --control path)")]
    InUse(PathBuf),
    #[error("control socket {0}: the path exists and is not a socket; not replacing it")]
    NotASocket(PathBuf),
    #[error("control socket {path}: {error}")]
    Io { path: PathBuf, error: io::Error },
}

/// Where `deskrelay info|list|stop` look when given no `--control`, and the path to pass to
/// `proxy --control` for them to find it: `$XDG_RUNTIME_DIR/deskrelay.sock`; else, for root,
/// `/run/deskrelay/deskrelay.sock`; else `/tmp/deskrelay-UID.sock`.
pub fn default_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return Path::new(&dir).join("deskrelay.sock");
    }
    // SAFETY: geteuid cannot fail and touches no memory.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        PathBuf::from("/run/deskrelay/deskrelay.sock")
    } else {
        PathBuf::from(format!("/tmp/deskrelay-{uid}.sock"))
    }
}

/// A bound control socket, not yet served.
#[derive(Debug)]
pub struct ControlSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ControlSocket {
    /// Binds `path` with mode 0600 (set before `listen`, so nobody connects while it is
    /// wider), replacing a stale socket and refusing a live one.
    pub fn bind(path: &Path) -> Result<Self, ControlError> {
        let io_err = |error| ControlError::Io {
            path: path.to_path_buf(),
            error,
        };
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(ControlError::NotASocket(path.to_path_buf()));
            }
            match UnixStream::connect(path) {
                Ok(_) => return Err(ControlError::InUse(path.to_path_buf())),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    tracing::info!(path = %path.display(), "removing a stale control socket");
                    std::fs::remove_file(path).map_err(io_err)?;
                }
                Err(e) => return Err(io_err(e)),
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(io_err)?;
            }
        }
        use socket2::{Domain, SockAddr, Socket, Type};
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(io_err)?;
        socket
            .bind(&SockAddr::unix(path).map_err(io_err)?)
            .map_err(io_err)?;
        let listening = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| socket.listen(16));
        if let Err(e) = listening {
            let _ = std::fs::remove_file(path);
            return Err(io_err(e));
        }
        Ok(Self {
            path: path.to_path_buf(),
            listener: socket.into(),
        })
    }

    /// Serves requests on a thread of its own until the returned server is dropped.
    /// `stop` is what SIGTERM does (drain, then exit).
    pub fn serve(
        self,
        sources: Sources,
        stop: impl Fn() + Send + 'static,
    ) -> io::Result<ControlServer> {
        let inode = std::fs::metadata(&self.path)?.ino();
        let listener = self.listener;
        let quit = Arc::new(AtomicBool::new(false));
        let thread = {
            let quit = Arc::clone(&quit);
            std::thread::Builder::new()
                .name("control".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if quit.load(Ordering::Relaxed) {
                            break;
                        }
                        match conn {
                            Ok(conn) => {
                                if let Err(e) = answer(conn, &sources, &stop) {
                                    tracing::debug!("control client: {e}");
                                }
                            }
                            Err(e) => {
                                tracing::warn!("control socket: {e}");
                                std::thread::sleep(Duration::from_millis(100));
                            }
                        }
                    }
                })?
        };
        Ok(ControlServer {
            path: self.path,
            inode,
            quit,
            thread: Some(thread),
        })
    }
}

/// The serving control socket; dropping it stops the thread and removes the socket file.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    inode: u64,
    quit: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.quit.store(true, Ordering::Relaxed);
        // Wakes the thread from accept: a connection of our own.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Only our own socket: never one another relay put there since.
        if std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Reads one request line and writes its answer.
fn answer(conn: UnixStream, sources: &Sources, stop: &dyn Fn()) -> io::Result<()> {
    conn.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    conn.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new(io::Read::take(&conn, MAX_REQUEST)).read_line(&mut line)?;
    let request = line.trim();
    let json = match request {
        "info" => serde_json::to_string(&sources.info()),
        "list" => serde_json::to_string(&sources.list()),
        "stop" => {
            let sessions = sources.registry.counts().iter().sum::<usize>() as u64;
            tracing::info!("control: stop asked; no new sessions, draining {sessions} open one(s)");
            stop();
            serde_json::to_string(&Stopping {
                schema: SCHEMA,
                stopping: true,
                sessions,
            })
        }
        // Our own wake-up at shutdown, or a client that sent nothing.
        "" => return Ok(()),
        other => serde_json::to_string(&Failure {
            schema: SCHEMA,
            error: format!(
                "unknown request `{}`: expected info, list or stop",
                other.escape_debug()
            ),
        }),
    }
    .map_err(io::Error::other)?;
    let mut out = &conn;
    out.write_all(json.as_bytes())?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests;
