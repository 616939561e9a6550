//! Whole-packet reads for the handshake, with a size limit and a deadline.
//!
//! Only the handshake decodes whole packets (hello, challenge, the backend's hello). The
//! bytes read past the last packet are handed on to the data phase untouched.

use std::io;
use std::task::Poll;
use std::time::Instant;

use bytes::BytesMut;

use crate::engine::runtime::within;
use crate::relay::direction::DataPath;
use crate::relay::stream::{read_ready, ByteStream};
use crate::xpra::packet::{Decoded, FrameDecoder, Limits};
use crate::xpra::ProtocolError;

/// Why a packet could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("connection closed")]
    Closed,
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Reads packets from one socket.
pub struct PacketReader {
    decoder: FrameDecoder,
    buf: BytesMut,
}

impl PacketReader {
    pub fn new(limits: Limits) -> Self {
        Self {
            decoder: FrameDecoder::new(limits),
            buf: BytesMut::new(),
        }
    }

    /// Reads until one whole packet is decoded, or `deadline` passes.
    pub async fn next(
        &mut self,
        conn: &impl ByteStream,
        deadline: Instant,
        dp: &DataPath,
    ) -> Result<Decoded, ReadError> {
        loop {
            if let Some(decoded) = self.decoder.decode(&mut self.buf)? {
                return Ok(decoded);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let n = within(left, self.fill(conn, dp))
                .await
                .ok_or(ReadError::Timeout)??;
            if n == 0 {
                return Err(ReadError::Closed);
            }
        }
    }

    /// One read, into a pooled buffer (held only while bytes are in it), appended to the
    /// decoder's buffer: no zero-filling of fresh memory per read.
    async fn fill(&mut self, conn: &impl ByteStream, dp: &DataPath) -> io::Result<usize> {
        let (buf, pool) = (&mut self.buf, &dp.buffers);
        read_ready(conn, &dp.ring, |read| {
            let mut scratch = pool.take();
            let outcome = read(&mut scratch);
            if let Poll::Ready(Ok(n)) = outcome {
                buf.extend_from_slice(&scratch[..n]);
            }
            pool.give_back(scratch);
            outcome
        })
        .await?
    }

    /// The bytes read but not decoded: the start of the data phase.
    pub fn into_leftover(self) -> Vec<u8> {
        self.buf.to_vec()
    }
}
