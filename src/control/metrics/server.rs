//! The `--metrics` listener: plain std threads, apart from the shards' executors, answering
//! `GET /metrics` (and `HEAD`); 404 for any other path, 405 for other methods.
//!
//! [`WORKERS`] threads take turns on one listening socket, each serving one connection at a
//! time, so at most that many scrapes are served at once and the rest wait in the kernel's
//! backlog. A connection has [`DEADLINE`] to send its request head (at most
//! `front::http::MAX_HEAD` bytes, parsed by the front door's own sans-I/O parser) and the
//! same to take the answer; then it is closed. So a scraper that stalls holds one worker
//! for a few seconds at most, and the other keeps answering. Every response closes the
//! connection: a scrape every few seconds does not need keep-alive.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::exposition::CONTENT_TYPE;
use crate::engine::shutdown::ShutdownPipe;
use crate::front::http::{self, HttpError, Method, Response, Status};

/// Connections served at once.
pub const WORKERS: usize = 2;
/// Time a scraper has to send its request, and again to read the answer.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// What renders the page (a closure, so the server is tested without a relay).
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// The running listener; [`MetricsServer::stop`] ends its threads.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<ShutdownPipe>,
    workers: Vec<JoinHandle<()>>,
}

impl MetricsServer {
    /// Serves `render()` on an already bound `listener` (bound with the relay's other
    /// sockets, before privileges are dropped).
    pub fn start(listener: TcpListener, render: Render) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        // Workers wait in poll(2), then accept; whoever loses the race gets EAGAIN.
        listener.set_nonblocking(true)?;
        let listener = Arc::new(listener);
        let stop = ShutdownPipe::new()?;
        let mut workers = Vec::with_capacity(WORKERS);
        for i in 0..WORKERS {
            let (listener, render, pipe) = (
                Arc::clone(&listener),
                Arc::clone(&render),
                Arc::clone(&stop),
            );
            let worker = std::thread::Builder::new()
                .name(format!("metrics-{i}"))
                .spawn(move || serve(&listener, &*render, &pipe));
            match worker {
                Ok(handle) => workers.push(handle),
                Err(e) => {
                    let started = Self {
                        addr,
                        stop,
                        workers,
                    };
                    started.stop();
                    return Err(e);
                }
            }
        }
        Ok(Self {
            addr,
            stop,
            workers,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and waits for the workers (a scrape in progress finishes first).
    pub fn stop(self) {
        self.stop.trigger();
        for w in self.workers {
            let _ = w.join();
        }
    }
}

/// One worker: wait for a connection or the stop pipe, serve, repeat.
fn serve(listener: &TcpListener, render: &(dyn Fn() -> String + Send + Sync), stop: &ShutdownPipe) {
    let mut fds = [
        libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: stop.fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: poll(2) on two live descriptors, with the array's own length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            tracing::error!("metrics listener: poll failed: {err}; no more scrapes");
            return;
        }
        if fds[1].revents != 0 {
            return;
        }
        match listener.accept() {
            Ok((conn, peer)) => {
                if let Err(e) = answer(conn, render) {
                    tracing::debug!(%peer, "metrics scrape: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                // Out of descriptors, most likely: the relay logs that too; don't spin.
                tracing::debug!("metrics listener: accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Reads one request head within the deadline and answers it.
fn answer(mut conn: TcpStream, render: &(dyn Fn() -> String + Send + Sync)) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_write_timeout(Some(DEADLINE))?;
    let deadline = Instant::now() + DEADLINE;
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let request = loop {
        match http::parse(&head) {
            Ok(Some((request, _))) => break Ok(request),
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        conn.set_read_timeout(Some(left))?;
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
    };
    let reply = match request {
        Err(e) => e.response(false),
        Ok(r) if r.path != "/metrics" => HttpError::NotFound.response(false),
        Ok(r) if !matches!(r.method, Method::Get | Method::Head) => {
            HttpError::MethodNotAllowed.response(false)
        }
        Ok(r) => {
            let body = render();
            let mut reply = Response::new(Status::Ok)
                .header("Content-Type", CONTENT_TYPE)
                .header("Cache-Control", "no-store")
                .content_length(body.len() as u64)
                .connection(false)
                .encode();
            if r.method == Method::Get {
                reply.extend_from_slice(body.as_bytes());
            }
            reply
        }
    };
    conn.write_all(&reply)?;
    // The client reads to EOF: FIN after the answer. Whatever it sent past its head is
    // dropped with the socket.
    let _ = conn.shutdown(std::net::Shutdown::Write);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn metrics_other_paths_and_methods() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = MetricsServer::start(listener, Arc::new(|| "up 1\n".into())).unwrap();
        let addr = server.addr();
        let ok = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("Content-Type: text/plain; version=0.0.4"),
            "{ok}"
        );
        assert!(ok.ends_with("\r\n\r\nup 1\n"), "{ok}");
        let head = get(addr, "HEAD /metrics?x=1 HTTP/1.0\r\n\r\n");
        assert!(
            head.contains("Content-Length: 5\r\n") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        let other = get(addr, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(other.starts_with("HTTP/1.1 404 "), "{other}");
        let post = get(addr, "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        let junk = get(addr, "GET /metrics\x01 HTTP/1.1\r\n\r\n");
        assert!(junk.starts_with("HTTP/1.1 400 "), "{junk}");
        server.stop();
    }
}
