//! Session set-up on the wire, per `--protocol`. Only `raw` exists today: the client's first
//! message is a [`Kind::Hello`] header naming the session. `xpra` (hello packet exchange) and
//! `ws` (HTTP upgrade, then framed messages) add a variant here and nowhere else.

use std::io;

use crate::cli::Protocol;
use crate::net::Conn;
use crate::wire::{Header, Kind, HEADER_LEN};

impl Protocol {
    /// Client side, right after connect: makes the backend learn `session`.
    pub async fn client_open(self, conn: &Conn, session: u32) -> io::Result<()> {
        match self {
            Protocol::Raw => {
                let hello = Header {
                    kind: Kind::Hello,
                    session,
                    len: 0,
                    seq: 0,
                    due_ns: 0,
                };
                conn.write_all(&hello.encode()).await
            }
        }
    }

    /// Backend side, right after accept: the session this connection belongs to, or `None`
    /// when the peer closed without a byte (a reachability probe, not a session).
    pub async fn backend_open(self, conn: &Conn) -> io::Result<Option<u32>> {
        match self {
            Protocol::Raw => {
                let mut b = [0u8; HEADER_LEN];
                let n = conn.read(&mut b).await?;
                if n == 0 {
                    return Ok(None);
                }
                conn.read_exact(&mut b[n..]).await?;
                let h = Header::decode(&b)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                if h.kind != Kind::Hello || h.len != 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "first message is not a hello",
                    ));
                }
                Ok(Some(h.session))
            }
        }
    }
}
