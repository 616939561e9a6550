//! [`WsStream`]: the byte stream inside a browser's WebSocket, as a [`ByteStream`], so the
//! xpra door and the bridge run over it unchanged.
//!
//! Reads go straight into the caller's buffer: the raw frames are read there, unmasked in
//! place, and their payload ranges moved to the front (one `memmove` per frame piece, no
//! second buffer). Only the bytes of an incomplete frame header or control frame are kept
//! between reads (`carry`, at most [`MIN_BUFFER`] bytes). Each write becomes one binary
//! frame. Control replies (pong, close) are sent before the next write, or at once when
//! the read side needs nothing else.
//!
//! Heartbeat liveness ([`WsStream::keep_alive`]): the stream notes whether the client sent
//! anything (a pong, any frame) and whether its reader is waiting on the client. A client
//! the reader waited on that sent nothing for two intervals after a ping is taken for gone
//! (a peer that vanished without a FIN); one whose reader is busy elsewhere (its bytes
//! held up by a slow backend) is not silent, only unheard; nor is one still reading our
//! data frames (a slow client's pongs wait behind them in its socket): a TCP
//! acknowledgement count that moved by more than the interval's pings could account for
//! shows the client reads, whether or not we wrote in that interval (after the last data
//! frame, a slow client still reads what our socket holds for it). Data written alone
//! proves nothing (a peer that is gone takes bytes until its buffer is full), nor do
//! acknowledged pings (a hung client's kernel still acknowledges them).

use std::cell::{Cell, RefCell};
use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::future::or;

use super::write_turn::WriteTurn;
use super::{binary_header, close, pong, CloseCode, ServerDecoder, Step, WsError, MIN_BUFFER};
use crate::engine::runtime::sleep;
use crate::relay::stream::ByteStream;

/// Heartbeat intervals after a ping that a client may stay silent before it is given up.
pub const SILENT_INTERVALS: u32 = 2;
/// Acknowledged bytes an interval's pings may account for (a ping frame is 2 bytes, 24 or
/// so in a TLS record): past this, the client's TCP took data.
const PING_BYTES_PER_INTERVAL: u64 = 256;
/// With a heartbeat, big data frames go out in writes of this size (one TLS record's
/// worth), so that a slow client reading them shows progress within an interval.
pub const HEARTBEAT_PIECE: usize = 16 * 1024;

/// A WebSocket connection (after the 101 response) carrying one byte stream.
pub struct WsStream<S> {
    inner: S,
    decoder: RefCell<ServerDecoder>,
    carry: RefCell<Vec<u8>>,
    /// Our close frame, queued to go before the next data (or at once).
    control: RefCell<Vec<u8>>,
    /// The pong for the client's latest ping not answered yet: one at most, however many
    /// pings a client sends without reading (RFC 6455 5.5.3 allows answering the last only).
    pong: RefCell<Option<Vec<u8>>>,
    /// A heartbeat ping waits for the writer busy with a frame (one at most).
    ping_due: Cell<bool>,
    /// The client sent a close frame, or broke the protocol: reads are over.
    closed: Cell<bool>,
    /// Whose turn it is to write: the session's direction or the heartbeat.
    turn: WriteTurn,
    /// A frame is being written, or its write was cut short (half a frame may be out).
    writing: Cell<bool>,
    /// Our close frame went out: nothing may follow it (RFC 6455 5.5.1).
    close_sent: Cell<bool>,
    /// The client sent bytes since [`WsStream::keep_alive`] last looked.
    heard: Cell<bool>,
    /// A data frame went out to the client since [`WsStream::keep_alive`] last looked.
    delivered: Cell<bool>,
    /// The most one transport write of a data frame carries, so that `delivered` moves
    /// while a big frame trickles out to a slow client ([`HEARTBEAT_PIECE`] with a heartbeat).
    piece: Cell<usize>,
    /// The last read found nothing from the client and waits for it.
    waiting: Cell<bool>,
}

impl<S: ByteStream> WsStream<S> {
    /// Wraps `inner` (a connection whose upgrade was answered); frames larger than
    /// `max_frame` bytes are refused with close 1009.
    pub fn new(inner: S, max_frame: u64) -> Self {
        Self {
            inner,
            decoder: RefCell::new(ServerDecoder::new(max_frame)),
            carry: RefCell::new(Vec::new()),
            control: RefCell::new(Vec::new()),
            pong: RefCell::new(None),
            ping_due: Cell::new(false),
            closed: Cell::new(false),
            turn: WriteTurn::default(),
            writing: Cell::new(false),
            close_sent: Cell::new(false),
            heard: Cell::new(false),
            delivered: Cell::new(false),
            piece: Cell::new(usize::MAX),
            waiting: Cell::new(false),
        }
    }

    /// Pings every `every` (see [`WsStream::heartbeat`]) and resolves once the client has
    /// sent nothing, while the reader waited on it, and read none of our data frames, for
    /// [`SILENT_INTERVALS`] intervals after a ping; returns that silence. Never resolves for a client that answers or sends.
    /// Dropping it may cut a ping short: [`ByteStream::close_going_away`] then knows.
    pub async fn keep_alive(&self, every: Duration) -> Duration {
        self.piece.set(HEARTBEAT_PIECE);
        let pinging = async {
            loop {
                sleep(every).await;
                if self.heartbeat().await.is_err() {
                    // The client is gone for writes: the session's own paths find out.
                    std::future::pending::<()>().await;
                }
            }
        };
        let watching = async {
            // Silence before the first ping proves nothing.
            sleep(every).await;
            self.heard.set(false);
            self.delivered.set(false);
            let mut acked = self.inner.bytes_acked();
            let mut silent = 0;
            loop {
                sleep(every).await;
                let heard = self.heard.replace(false);
                // It reads if data frames went out and its TCP took them, or if its TCP took
                // more than pings (what our socket still held after the last frame). Data
                // merely written proves nothing, a vanished peer's socket takes bytes until
                // its buffer is full; acknowledged pings prove only that its host is up.
                let now = self.inner.bytes_acked();
                let delivered = self.delivered.replace(false);
                let reading = (delivered && (now.is_none() || now > acked))
                    || matches!((acked, now), (Some(before), Some(now))
                        if now > before + PING_BYTES_PER_INTERVAL);
                acked = now;
                if heard || reading || !self.waiting.get() {
                    silent = 0;
                } else {
                    silent += 1;
                    if silent == SILENT_INTERVALS {
                        return every * silent;
                    }
                }
            }
        };
        or(watching, pinging).await
    }

    /// A heartbeat ping: sent now when no frame is being written, else queued to go out
    /// before the next one (a busy connection needs no heartbeat to stay open).
    pub async fn heartbeat(&self) -> io::Result<()> {
        if self.closed.get() || self.close_sent.get() {
            return Ok(()); // closing: nothing may follow a close frame, and none is needed
        }
        let Some(_turn) = self.turn.try_take() else {
            self.ping_due.set(true);
            return Ok(());
        };
        if self.writing.get() {
            // A write was cut short: no frame may follow it.
            return Ok(());
        }
        self.writing.set(true);
        let r = self.ping(b"").await;
        self.writing.set(false);
        r
    }

    /// Sends a close frame with `code` (best effort) and ends the connection.
    pub async fn close_with(&self, code: CloseCode, reason: &str) {
        let _turn = self.turn.take().await;
        let _ = self.inner.write_all(&close(code, reason)).await;
        let _ = self.inner.shutdown_write();
    }

    /// Sends a ping (heartbeat), after any queued control frame.
    pub async fn ping(&self, payload: &[u8]) -> io::Result<()> {
        self.flush_control().await?;
        self.inner.write_all(&super::ping(payload)).await
    }

    /// One binary frame: small payloads with their header in one write (one TLS record,
    /// one segment); big ones as two writes rather than a copy.
    async fn write_frame(&self, buf: &[u8]) -> io::Result<()> {
        if self.closed.get() {
            // The client closed (or broke the protocol): its close is answered, and no
            // data frame may follow ours.
            self.flush_control().await?;
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.flush_control().await?;
        let (head, len) = binary_header(buf.len() as u64);
        if buf.len() <= 16 * 1024 {
            let mut frame = Vec::with_capacity(len + buf.len());
            frame.extend_from_slice(&head[..len]);
            frame.extend_from_slice(buf);
            self.inner.write_all(&frame).await?;
            self.delivered.set(true);
        } else {
            self.inner.write_all(&head[..len]).await?;
            for piece in buf.chunks(self.piece.get()) {
                self.inner.write_all(piece).await?;
                self.delivered.set(true);
            }
        }
        Ok(())
    }

    async fn flush_control(&self) -> io::Result<()> {
        if self.close_sent.get() {
            return Ok(());
        }
        // The pong and a heartbeat ping first: nothing may follow a close frame.
        let mut frames = self.pong.take().unwrap_or_default();
        if self.ping_due.replace(false) {
            frames.extend(super::ping(b""));
        }
        let queued = std::mem::take(&mut *self.control.borrow_mut());
        if queued.len() >= 2 && has_close(&queued) {
            self.close_sent.set(true);
        }
        frames.extend(queued);
        if frames.is_empty() {
            return Ok(());
        }
        self.inner.write_all(&frames).await
    }

    /// Decodes the frames in `buf[..filled]`; returns how many payload bytes now sit at
    /// the front of `buf`, or the protocol error.
    fn decode(&self, buf: &mut [u8], filled: usize) -> Result<usize, WsError> {
        let mut steps = Vec::new();
        let result = self
            .decoder
            .borrow_mut()
            .decode_in_place(&mut buf[..filled], &mut steps);
        // An unfinished header or control frame waits for the next read.
        let tail = match &result {
            Ok(consumed) => buf[*consumed..filled].to_vec(),
            Err(_) => Vec::new(),
        };
        let mut out = 0;
        for step in steps {
            match step {
                Step::Data(r) => {
                    let n = r.len();
                    buf.copy_within(r, out);
                    out += n;
                }
                Step::Ping(r) => *self.pong.borrow_mut() = Some(pong(&buf[r])),
                Step::Pong(_) => {}
                Step::Close { .. } => {
                    self.closed.set(true);
                    self.control
                        .borrow_mut()
                        .extend(close(CloseCode::Normal, ""));
                }
            }
        }
        result?;
        if !self.closed.get() {
            *self.carry.borrow_mut() = tail;
        }
        Ok(out)
    }
}

/// Whether a run of queued server control frames (unmasked, payload <= 125) holds a close.
fn has_close(frames: &[u8]) -> bool {
    let mut pos = 0;
    while pos + 2 <= frames.len() {
        if frames[pos] & 0x0f == 0x8 {
            return true;
        }
        pos += 2 + (frames[pos + 1] & 0x7f) as usize;
    }
    false
}

impl<S: ByteStream> ByteStream for WsStream<S> {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        debug_assert!(
            buf.len() >= 2 * MIN_BUFFER,
            "room for a carried control frame"
        );
        loop {
            self.waiting.set(false);
            if self.closed.get() {
                return Poll::Ready(Ok(0));
            }
            let carried = std::mem::take(&mut *self.carry.borrow_mut());
            buf[..carried.len()].copy_from_slice(&carried);
            let n = match self.inner.poll_read(cx, &mut buf[carried.len()..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(0)),
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    *self.carry.borrow_mut() = carried;
                    self.waiting.set(true);
                    return Poll::Pending;
                }
            };
            self.heard.set(true);
            match self.decode(buf, carried.len() + n) {
                Ok(0) => continue, // only control frames, or a partial header: read on
                Ok(out) => return Poll::Ready(Ok(out)),
                Err(e) => {
                    self.closed.set(true);
                    self.control
                        .borrow_mut()
                        .extend(close(e.close_code(), &e.to_string()));
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
                }
            }
        }
    }

    async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        let _turn = self.turn.take().await;
        self.writing.set(true);
        let r = self.write_frame(buf).await;
        self.writing.set(false);
        r
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.inner.shutdown_write()
    }

    async fn close_write(&self) -> io::Result<()> {
        // A close frame (ours, or the one answering the client's, or a protocol error's
        // code queued by the reader), then the transport's own end.
        let _turn = self.turn.take().await;
        if self.control.borrow().is_empty() && !self.close_sent.get() {
            self.control
                .borrow_mut()
                .extend(close(CloseCode::Normal, ""));
        }
        self.flush_control().await?;
        self.inner.close_write().await
    }

    async fn close_going_away(&self, reason: &str) -> io::Result<()> {
        // A write cut short (its future dropped) may have left half a frame: no close frame
        // can follow it, only the transport's end.
        let _turn = self.turn.take().await;
        if self.writing.get() || self.close_sent.get() {
            return self.inner.shutdown_write();
        }
        if !has_close(&self.control.borrow()) {
            self.control
                .borrow_mut()
                .extend(close(CloseCode::Away, reason));
        }
        self.flush_control().await?;
        self.inner.close_write().await
    }

    fn shutdown_read(&self) {
        self.inner.shutdown_read()
    }

    fn shutdown_both(&self) {
        self.inner.shutdown_both()
    }

    fn is_local(&self) -> bool {
        self.inner.is_local()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}
