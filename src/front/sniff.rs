//! Single-port sniffing: what a connection is, from its first bytes.
//!
//! xpra frames start with `P` and a flags byte below 0x20; a TLS ClientHello record with
//! 0x16 0x03; HTTP with a method and a space. Anything else is for the fallback server.
//! Protocols whose server speaks first (VNC's `RFB`, SSH) send nothing to sniff: their
//! clients wait, the deadline passes, and they are closed.

use std::io;
use std::rc::Rc;
use std::time::Duration;

use crate::engine::runtime::within;
use crate::relay::stream::{read_ready, ByteStream};
use crate::uring::ShardRing;

/// What a connection's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Xpra,
    Tls,
    Http,
    Other,
}

/// HTTP methods a client may start with.
const METHODS: &[&[u8]] = &[
    b"GET ",
    b"HEAD ",
    b"POST ",
    b"PUT ",
    b"OPTIONS ",
    b"DELETE ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// Most bytes read before deciding; every rule decides within a handful.
pub const SNIFF_MAX: usize = 512;

/// Classifies `first` bytes, or None while they could still be more than one thing.
pub fn classify(first: &[u8]) -> Option<Kind> {
    let &b0 = first.first()?;
    if b0 == 0x16 {
        return Some(match first.get(1)? {
            0x03 => Kind::Tls,
            _ => Kind::Other,
        });
    }
    let http_prefix = METHODS.iter().any(|m| {
        let n = m.len().min(first.len());
        m[..n] == first[..n]
    });
    if METHODS.iter().any(|m| first.starts_with(m)) {
        return Some(Kind::Http);
    }
    if b0 == b'P' {
        // xpra's second byte is its protocol flags (< 0x20); HTTP's is a letter.
        let &b1 = first.get(1)?;
        if b1 < 0x20 {
            return Some(Kind::Xpra);
        }
    }
    if http_prefix && first.len() < SNIFF_MAX {
        return None;
    }
    Some(Kind::Other)
}

/// Why sniffing ended without a verdict.
#[derive(Debug, thiserror::Error)]
pub enum SniffError {
    #[error("sent nothing recognisable within the sniff deadline")]
    Timeout,
    #[error("closed before sending anything recognisable")]
    Closed,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Reads the connection's first bytes until [`classify`] decides, within `deadline`.
/// Returns the verdict and the bytes read (to be replayed to whoever takes the connection).
pub async fn sniff(
    conn: &impl ByteStream,
    deadline: Duration,
    ring: &Rc<ShardRing>,
) -> Result<(Kind, Vec<u8>), SniffError> {
    sniff_from(conn, Vec::new(), deadline, ring).await
}

/// [`sniff`] for a connection whose first bytes (`first`) were already read (after a PROXY
/// protocol header).
pub async fn sniff_from(
    conn: &impl ByteStream,
    mut first: Vec<u8>,
    deadline: Duration,
    ring: &Rc<ShardRing>,
) -> Result<(Kind, Vec<u8>), SniffError> {
    if let Some(kind) = classify(&first) {
        return Ok((kind, first));
    }
    let reading = async {
        loop {
            let mut buf = [0u8; SNIFF_MAX];
            let room = SNIFF_MAX.saturating_sub(first.len()).max(1);
            let n = read_ready(conn, ring, |read| read(&mut buf[..room])).await??;
            if n == 0 {
                return Err(SniffError::Closed);
            }
            first.extend_from_slice(&buf[..n]);
            if let Some(kind) = classify(&first) {
                return Ok(kind);
            }
        }
    };
    let kind = within(deadline, reading)
        .await
        .ok_or(SniffError::Timeout)??;
    Ok((kind, first))
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_decide_the_door() {
        assert_eq!(classify(b""), None);
        assert_eq!(classify(b"P"), None);
        assert_eq!(
            classify(&[b'P', 1, 1, 0, 0, 0, 0x58, 0x43]),
            Some(Kind::Xpra)
        );
        assert_eq!(classify(&[b'P', 0x10]), Some(Kind::Xpra));
        assert_eq!(classify(b"PO"), None);
        assert_eq!(classify(b"POST /x HTTP/1.1"), Some(Kind::Http));
        assert_eq!(classify(b"PUT "), Some(Kind::Http));
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Some(Kind::Http));
        assert_eq!(classify(b"GE"), None);
        assert_eq!(classify(&[0x16]), None);
        assert_eq!(classify(&[0x16, 0x03, 0x01]), Some(Kind::Tls));
        assert_eq!(classify(b"SSH-2.0-OpenSSH"), Some(Kind::Other));
        assert_eq!(classify(b"GETTING"), Some(Kind::Other));
        assert_eq!(classify(b"\x00\x01"), Some(Kind::Other));
    }
}
