//! Session set-up on the wire, per `--protocol`, and how messages are framed after it.
//!
//! - `raw`: the client's first message is a [`Kind::Hello`] header naming the session;
//!   messages then follow one another unframed.
//! - `xpra` ([`crate::xpra`]): hello, challenge-response authentication when the relay asks,
//!   the server's hello; messages then travel inside xpra frames ([`crate::xframe`]).
//!
//! `ws` (HTTP upgrade, then framed messages) adds a variant here.

use std::io;

use crate::cli::Protocol;
use crate::decode::Decoder;
use crate::net::Conn;
use crate::wire::{Header, Kind, Pattern, WireError, HEADER_LEN};
use crate::xframe::{self, Unframer};

/// Why a session could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The peer said no (an xpra `disconnect`); the text is its reason.
    #[error("{0}")]
    Refused(String),
    /// The peer broke the protocol.
    #[error("{0}")]
    Protocol(String),
}

impl SetupError {
    /// The key a failure is counted under: the peer's reason verbatim for a refusal (e.g.
    /// "authentication failed"), else "set-up: ...".
    pub fn reason(&self) -> String {
        match self {
            SetupError::Io(e) => format!("set-up: {}", e.kind()),
            SetupError::Refused(why) => why.clone(),
            SetupError::Protocol(what) => format!("set-up: {what}"),
        }
    }
}

impl Protocol {
    /// Client side, right after connect: makes the backend learn `session`. `password`
    /// answers an xpra relay's challenge. With `round_trip` (the handshake profile) a raw
    /// set-up waits for the backend's hello back, as xpra's always does. Returns the bytes
    /// read past the set-up (the start of the downstream messages).
    pub async fn client_open(
        self,
        conn: &Conn,
        session: u32,
        password: Option<&[u8]>,
        round_trip: bool,
    ) -> Result<Vec<u8>, SetupError> {
        match self {
            Protocol::Raw => {
                conn.write_all(&raw_hello(session).encode()).await?;
                if round_trip {
                    let mut b = [0u8; HEADER_LEN];
                    conn.read_exact(&mut b).await?;
                    if Header::decode(&b).ok() != Some(raw_hello(session)) {
                        return Err(SetupError::Protocol("the backend's hello is wrong".into()));
                    }
                }
                Ok(Vec::new())
            }
            Protocol::Xpra => crate::xpra::client_handshake(conn, session, password).await,
        }
    }

    /// Backend side, right after accept: the session this connection belongs to and the
    /// bytes read past the set-up, or `None` when the peer closed without a byte (a
    /// reachability probe, not a session). With `round_trip`, a raw backend answers the
    /// hello with its own.
    pub async fn backend_open(
        self,
        conn: &Conn,
        round_trip: bool,
    ) -> Result<Option<(u32, Vec<u8>)>, SetupError> {
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
                    return Err(SetupError::Protocol("first message is not a hello".into()));
                }
                if round_trip {
                    conn.write_all(&raw_hello(h.session).encode()).await?;
                }
                Ok(Some((h.session, Vec::new())))
            }
            Protocol::Xpra => crate::xpra::server_handshake(conn).await,
        }
    }

    /// Writes one message (`h` and its `payload`), framed for this protocol. `buf` is
    /// scratch space, reused across calls.
    pub async fn write_message(
        self,
        conn: &Conn,
        h: &Header,
        payload: &[u8],
        buf: &mut Vec<u8>,
    ) -> io::Result<()> {
        /// Payloads up to this size are written together with their header (one segment).
        const COALESCE: usize = 16 * 1024;
        buf.clear();
        match self {
            Protocol::Raw => {
                buf.extend_from_slice(&h.encode());
                if payload.len() <= COALESCE {
                    buf.extend_from_slice(payload);
                    conn.write_all(buf).await
                } else {
                    conn.write_all(buf).await?;
                    conn.write_all(payload).await
                }
            }
            Protocol::Xpra if xframe::inline(payload.len()) => {
                xframe::inline_head(HEADER_LEN + payload.len(), buf);
                buf.extend_from_slice(&h.encode());
                buf.extend_from_slice(payload);
                conn.write_all(buf).await
            }
            Protocol::Xpra => {
                buf.extend_from_slice(&xframe::chunk_head(HEADER_LEN + payload.len()));
                buf.extend_from_slice(&h.encode());
                conn.write_all(buf).await?;
                conn.write_all(payload).await?;
                conn.write_all(&xframe::TRAILER).await
            }
        }
    }

    /// Ends a direction after its last message: FIN for raw, the end packet for xpra (whose
    /// relays may not pass a half-close; the connection closes once both ends are done).
    pub async fn end_stream(self, conn: &Conn) -> io::Result<()> {
        match self {
            Protocol::Raw => {
                conn.shutdown_write();
                Ok(())
            }
            Protocol::Xpra => conn.write_all(&xframe::END).await,
        }
    }

    /// The verifying receiver of one direction of `session`.
    pub fn decoder(self, session: u32) -> StreamDecoder {
        match self {
            Protocol::Raw => StreamDecoder::Raw(Decoder::new(session)),
            Protocol::Xpra => StreamDecoder::Xpra(Box::new(Unframer::new(session))),
        }
    }
}

/// The raw protocol's hello of `session`.
fn raw_hello(session: u32) -> Header {
    Header {
        kind: Kind::Hello,
        session,
        len: 0,
        seq: 0,
        due_ns: 0,
    }
}

/// A direction's receiver: the messages as they are, or unwrapped from xpra frames.
pub enum StreamDecoder {
    Raw(Decoder),
    Xpra(Box<Unframer>),
}

impl StreamDecoder {
    /// Consumes `buf`; calls `done` with the header of each message completed in it.
    pub fn feed(
        &mut self,
        pattern: &Pattern,
        buf: &[u8],
        done: impl FnMut(&Header),
    ) -> Result<(), WireError> {
        match self {
            StreamDecoder::Raw(d) => d.feed(pattern, buf, done),
            StreamDecoder::Xpra(u) => u.feed(pattern, buf, done),
        }
    }

    /// True once the peer has said its direction is over (xpra's end packet).
    pub fn ended(&self) -> bool {
        match self {
            StreamDecoder::Raw(_) => false,
            StreamDecoder::Xpra(u) => u.ended(),
        }
    }

    /// At end of stream: an error if it ended inside a message (or a frame).
    pub fn finish(&self) -> Result<(), WireError> {
        match self {
            StreamDecoder::Raw(d) => d.finish(),
            StreamDecoder::Xpra(u) => u.finish(),
        }
    }
}
