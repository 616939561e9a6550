//! Session set-up on the wire, per `--protocol`, and how messages are framed after it.
//!
//! - `raw`: the client's first message is a [`Kind::Hello`] header naming the session;
//!   messages then follow one another unframed.
//! - `xpra` ([`crate::xpra`]): hello, challenge-response authentication when the relay asks,
//!   the server's hello; messages then travel inside xpra frames ([`crate::xframe`]).
//! - `ws` ([`crate::ws`]): the client upgrades to a WebSocket by token and speaks the raw
//!   protocol inside masked binary frames, ending upstream with an in-band end marker; the
//!   backend speaks raw TCP. Framing therefore depends on the side, hence the [`Dir`]
//!   arguments: upstream is what the client writes and the backend reads.

use std::io;

use crate::cli::Protocol;
use std::net::SocketAddr;

use crate::decode::Decoder;
use crate::flow::Dir;
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
    /// Client side, right after connecting to `host`: makes the backend learn `session`.
    /// `credential` answers an xpra relay's challenge (the password) or picks a WebSocket
    /// gateway's target (the token). With `round_trip` (the handshake profile) a raw or ws
    /// set-up waits for the backend's hello back, as xpra's always does. Returns the bytes
    /// read past the set-up (the start of the downstream messages).
    pub async fn client_open(
        self,
        conn: &Conn,
        session: u32,
        credential: Option<&[u8]>,
        host: SocketAddr,
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
            Protocol::Xpra => crate::xpra::client_handshake(conn, session, credential).await,
            Protocol::Ws => {
                crate::ws::client_handshake(conn, session, credential, host, round_trip).await
            }
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
            Protocol::Raw | Protocol::Ws => {
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

    /// Writes one message (`h` and its `payload`) of direction `dir`, framed for this
    /// protocol. `buf` is scratch space, reused across calls.
    pub async fn write_message(
        self,
        conn: &Conn,
        dir: Dir,
        h: &Header,
        payload: &[u8],
        buf: &mut Vec<u8>,
    ) -> io::Result<()> {
        /// Payloads up to this size are written together with their header (one segment).
        const COALESCE: usize = 16 * 1024;
        buf.clear();
        match self {
            Protocol::Ws if dir == Dir::Up => {
                crate::ws::message_frame(h, payload, buf);
                conn.write_all(buf).await
            }
            Protocol::Raw | Protocol::Ws => {
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

    /// Ends direction `dir` of `session` after its last message: FIN for raw, the end
    /// packet for xpra, the end marker in a frame for ws upstream (neither has a half-close;
    /// the connection closes once both ends are done), FIN for ws downstream (the relay's
    /// backend side is TCP; the relay turns it into its close frame).
    pub async fn end_stream(self, conn: &Conn, dir: Dir, session: u32) -> io::Result<()> {
        match self {
            Protocol::Ws if dir == Dir::Up => conn.write_all(&crate::ws::end_frame(session)).await,
            Protocol::Raw | Protocol::Ws => {
                conn.shutdown_write();
                Ok(())
            }
            Protocol::Xpra => conn.write_all(&xframe::END).await,
        }
    }

    /// The client's last word once both directions are done: ws answers the server's close
    /// frame with its own (best effort: a relay may have closed already); the others have
    /// nothing to say.
    pub async fn client_close(self, conn: &Conn) {
        if self == Protocol::Ws {
            let _ = conn.write_all(&crate::ws::close_frame()).await;
        }
    }

    /// True when the backend waits for the client to leave after ending downstream (the
    /// protocols whose upstream ends in band rather than with FIN).
    pub fn backend_waits_for_close(self) -> bool {
        matches!(self, Protocol::Xpra | Protocol::Ws)
    }

    /// The verifying receiver of direction `dir` of `session`.
    pub fn decoder(self, session: u32, dir: Dir) -> StreamDecoder {
        match (self, dir) {
            (Protocol::Raw, _) => StreamDecoder::Raw(Decoder::new(session)),
            (Protocol::Xpra, _) => StreamDecoder::Xpra(Box::new(Unframer::new(session))),
            (Protocol::Ws, Dir::Up) => StreamDecoder::Raw(Decoder::with_end_marker(session)),
            (Protocol::Ws, Dir::Down) => {
                StreamDecoder::Ws(Box::new(crate::ws::Unframer::new(session)))
            }
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

/// A direction's receiver: the messages as they are (with or without an end marker), or
/// unwrapped from xpra or WebSocket frames.
pub enum StreamDecoder {
    Raw(Decoder),
    Xpra(Box<Unframer>),
    Ws(Box<crate::ws::Unframer>),
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
            StreamDecoder::Ws(u) => u.feed(pattern, buf, done),
        }
    }

    /// True once the peer has said its direction is over (xpra's end packet, ws's end
    /// marker upstream and the server's close frame downstream).
    pub fn ended(&self) -> bool {
        match self {
            StreamDecoder::Raw(d) => d.ended(),
            StreamDecoder::Xpra(u) => u.ended(),
            StreamDecoder::Ws(u) => u.ended(),
        }
    }

    /// At end of stream: an error if it ended inside a message (or a frame).
    pub fn finish(&self) -> Result<(), WireError> {
        match self {
            StreamDecoder::Raw(d) => d.finish(),
            StreamDecoder::Xpra(u) => u.finish(),
            StreamDecoder::Ws(u) => u.finish(),
        }
    }
}
