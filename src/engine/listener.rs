//! Listening sockets: one per shard per `--bind` address, all in one SO_REUSEPORT group so
//! the kernel spreads connections across shards.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

const BACKLOG: i32 = 4096;

/// The sockets every shard will accept on, and the addresses they are bound to (port 0
/// resolved to the port the kernel picked).
#[derive(Debug)]
pub struct BoundListeners {
    pub addrs: Vec<SocketAddr>,
    pub per_shard: Vec<Vec<OwnedFd>>,
}

/// Binds `shards` listening sockets on each address.
pub fn bind_all(binds: &[SocketAddr], shards: usize) -> io::Result<BoundListeners> {
    let mut addrs = Vec::with_capacity(binds.len());
    let mut per_shard: Vec<Vec<OwnedFd>> = (0..shards).map(|_| Vec::new()).collect();
    for &wanted in binds {
        let mut addr = wanted;
        for sockets in per_shard.iter_mut() {
            let socket = listen(addr)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {wanted}: {e}")))?;
            // The first socket resolves port 0; the others join its port.
            addr = socket.local_addr()?.as_socket().expect("an inet socket");
            // SAFETY: into_raw_fd hands over sole ownership of the descriptor.
            sockets.push(unsafe { OwnedFd::from_raw_fd(socket.into_raw_fd()) });
        }
        addrs.push(addr);
    }
    Ok(BoundListeners { addrs, per_shard })
}

/// Takes a listening socket off its port at once, whatever still refers to it.
///
/// Closing is not enough: glommio's ring holds the socket through its cancelled accept
/// until the ring is torn down, which the kernel does asynchronously after the process
/// exits. Meanwhile the socket stays in the SO_REUSEPORT group, so a deskrelay restarted on
/// the same port had connections routed to a listener nobody accepts on (seen: two
/// listeners in LISTEN after exit in one stop of three). shutdown(2) moves it out of
/// LISTEN now: connections still in its backlog are reset, new ones go to live listeners.
pub fn stop_listening(fd: RawFd) {
    // SAFETY: shutdown(2) on a descriptor the caller owns; failure leaves it as it was.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}

fn listen(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    // Accepted sockets start with the listener's TCP_NODELAY: no setsockopt(2) per session.
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_sockets_inherit_nodelay_from_the_listener() {
        let bound = bind_all(&["127.0.0.1:0".parse().unwrap()], 1).unwrap();
        let _client = std::net::TcpStream::connect(bound.addrs[0]).unwrap();
        let listener = std::net::TcpListener::from(bound.per_shard[0][0].try_clone().unwrap());
        listener.set_nonblocking(false).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY not inherited");
    }

    #[test]
    fn port_zero_resolves_to_one_port_for_every_shard() {
        let bound = bind_all(&["127.0.0.1:0".parse().unwrap()], 3).unwrap();
        assert_eq!(bound.addrs.len(), 1);
        assert_ne!(bound.addrs[0].port(), 0);
        assert_eq!(bound.per_shard.len(), 3);
        assert!(bound.per_shard.iter().all(|s| s.len() == 1));
    }

    #[test]
    fn a_taken_port_is_a_clear_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = bind_all(&[addr], 1).unwrap_err().to_string();
        assert!(err.contains(&addr.to_string()), "{err}");
    }
}
