//! [`ServerDecoder`]: reads the frames a browser sends, sans-I/O, unmasking payloads in place.
//!
//! Made for a relay that bridges binary messages to a TCP byte stream: message boundaries do
//! not matter there, so payload bytes come out as soon as they arrive, a big frame in as
//! many pieces as the reads that carry it (the key phase is carried across calls). Two
//! ways in:
//!
//! - [`ServerDecoder::decode_in_place`] unmasks in the caller's read buffer and reports
//!   [`Step`]s as ranges of it, so payload is forwarded from where it was read, uncopied;
//! - [`ServerDecoder::decode`] works on a `BytesMut` and returns one [`Event`] with the
//!   payload split off as `Bytes` (no copy either).
//!
//! Headers are parsed by tungstenite's [`FrameHeader::parse`]; every rule RFC 6455 puts on a
//! client's frames is checked from the header, before any payload is waited for, so an
//! oversized frame costs its 14 header bytes, never a buffer. Control frames (at most 125
//! bytes of payload) are reported whole; the caller keeps their bytes until they are.
//! After an error the decoder keeps returning it; after a close frame it ignores the rest.

use std::io::Cursor;
use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};
use tungstenite::error::{Error as TungError, ProtocolError};
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, FrameHeader};

use super::mask::apply_mask;
use super::WsError;

/// Largest control frame payload (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Longest frame header: 2 bytes, a 64-bit length, a 4-byte key.
pub const MAX_HEADER_LEN: usize = 14;

/// Fewest bytes a read buffer must hold so that any control frame fits in it whole.
pub const MIN_BUFFER: usize = MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD;

/// What the caller does with a stretch of its buffer, as reported by
/// [`ServerDecoder::decode_in_place`]. Ranges index that buffer; their bytes are unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Binary payload bytes to forward (maybe only part of a frame).
    Data(Range<usize>),
    /// A ping; answer with a pong carrying these bytes.
    Ping(Range<usize>),
    /// A pong with this payload.
    Pong(Range<usize>),
    /// The client closes. `code` is `None` for an empty close frame; `reason` is UTF-8.
    Close {
        code: Option<CloseCode>,
        reason: Range<usize>,
    },
}

/// One decoded event with its payload split off the buffer, from [`ServerDecoder::decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Binary payload bytes to forward (maybe only part of a frame).
    Data(Bytes),
    /// A ping; answer with a pong carrying these bytes.
    Ping(Bytes),
    /// A pong with this payload.
    Pong(Bytes),
    /// The client closes; `None` for an empty close frame.
    Close(Option<CloseFrame<'static>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The next byte starts a frame header.
    Header,
    /// This many payload bytes of a data frame remain, masked with `key` from `offset` on.
    Payload {
        left: u64,
        key: [u8; 4],
        offset: u64,
    },
    /// A close frame was read; nothing after it counts.
    Closed,
}

/// Decoder of the frames one client sends to the server.
#[derive(Debug, Clone)]
pub struct ServerDecoder {
    state: State,
    /// A binary message's first frame came without FIN: continuations are expected.
    in_message: bool,
    max_frame: u64,
    failed: Option<WsError>,
}

impl ServerDecoder {
    /// A decoder refusing (close 1009) data frames of more than `max_frame` payload bytes.
    pub fn new(max_frame: u64) -> Self {
        Self {
            state: State::Header,
            in_message: false,
            max_frame,
            failed: None,
        }
    }

    /// Whether the client has sent a close frame.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether everything read so far ends a whole message (no frame or fragmented
    /// message half read).
    pub fn at_message_boundary(&self) -> bool {
        self.state == State::Header && !self.in_message
    }

    /// Walks `buf`, unmasking payloads in place and appending what to do with them to
    /// `steps`. Returns how many bytes were dealt with; the rest (a partial header or an
    /// incomplete control frame) must be fed again at the start of the next call, followed
    /// by more bytes. Bytes of a data frame's payload are always consumed as they come.
    ///
    /// On error, the steps pushed before it are still valid and may be acted on; the
    /// connection must then be closed with [`WsError::close_code`].
    pub fn decode_in_place(
        &mut self,
        buf: &mut [u8],
        steps: &mut Vec<Step>,
    ) -> Result<usize, WsError> {
        let mut pos = 0;
        while pos < buf.len() {
            let (used, step) = self.advance(&mut buf[pos..])?;
            if used == 0 {
                break;
            }
            if let Some(step) = step {
                steps.push(shift(step, pos));
            }
            pos += used;
        }
        Ok(pos)
    }

    /// Decodes the next event from the front of `buf`, splitting its bytes off (headers are
    /// dropped). `Ok(None)`: more bytes are needed; what is left in `buf` must be kept.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, WsError> {
        loop {
            let (used, step) = self.advance(&mut buf[..])?;
            if used == 0 {
                return Ok(None);
            }
            let Some(step) = step else {
                buf.advance(used);
                continue;
            };
            let frame = buf.split_to(used).freeze();
            return Ok(Some(match step {
                Step::Data(r) => Event::Data(frame.slice(r)),
                Step::Ping(r) => Event::Ping(frame.slice(r)),
                Step::Pong(r) => Event::Pong(frame.slice(r)),
                Step::Close { code, reason } => Event::Close(code.map(|code| CloseFrame {
                    code,
                    // Checked UTF-8 when the step was made.
                    reason: String::from_utf8_lossy(&frame[reason]).into_owned().into(),
                })),
            }));
        }
    }

    /// One step from the start of `input`: bytes used and what they were.
    fn advance(&mut self, input: &mut [u8]) -> Result<(usize, Option<Step>), WsError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = match self.state {
            State::Closed => Ok((input.len(), None)),
            State::Payload { left, key, offset } => Ok(self.payload(input, left, key, offset)),
            State::Header => self.frame(input),
        };
        if let Err(err) = &result {
            self.failed = Some(err.clone());
        }
        result
    }

    fn payload(
        &mut self,
        input: &mut [u8],
        left: u64,
        key: [u8; 4],
        offset: u64,
    ) -> (usize, Option<Step>) {
        let n = left.min(input.len() as u64) as usize;
        if n == 0 {
            return (0, None);
        }
        apply_mask(&mut input[..n], key, offset);
        let left = left - n as u64;
        self.state = if left == 0 {
            State::Header
        } else {
            State::Payload {
                left,
                key,
                offset: offset + n as u64,
            }
        };
        (n, Some(Step::Data(0..n)))
    }

    /// A frame header at the start of `input`, and a control frame's payload with it.
    fn frame(&mut self, input: &mut [u8]) -> Result<(usize, Option<Step>), WsError> {
        let mut cursor = Cursor::new(&*input);
        let Some((header, len)) = FrameHeader::parse(&mut cursor).map_err(header_error)? else {
            return Ok((0, None));
        };
        // At most MAX_HEADER_LEN: the cursor only moved over the header.
        let header_len = cursor.position() as usize;
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(WsError::ReservedBits);
        }
        let Some(key) = header.mask else {
            return Err(WsError::Unmasked);
        };
        let control = match header.opcode {
            OpCode::Data(data) => {
                self.data_header(data, header.is_final, len)?;
                if len > 0 {
                    self.state = State::Payload {
                        left: len,
                        key,
                        offset: 0,
                    };
                }
                return Ok((header_len, None));
            }
            OpCode::Control(control) => control,
        };
        if !header.is_final {
            return Err(WsError::FragmentedControl);
        }
        if len > MAX_CONTROL_PAYLOAD as u64 {
            return Err(WsError::ControlTooLong(len));
        }
        let end = header_len + len as usize;
        if input.len() < end {
            return Ok((0, None));
        }
        apply_mask(&mut input[header_len..end], key, 0);
        let payload = header_len..end;
        let step = match control {
            Control::Ping => Step::Ping(payload),
            Control::Pong => Step::Pong(payload),
            Control::Close => {
                let step = close_step(&input[payload.clone()], payload.start)?;
                self.state = State::Closed;
                step
            }
            Control::Reserved(op) => return Err(WsError::BadOpcode(op)),
        };
        Ok((end, Some(step)))
    }

    /// Checks a data frame's header against the message in progress and the size limit.
    fn data_header(&mut self, data: Data, is_final: bool, len: u64) -> Result<(), WsError> {
        match data {
            Data::Text => return Err(WsError::Text),
            Data::Reserved(op) => return Err(WsError::BadOpcode(op)),
            Data::Binary if self.in_message => return Err(WsError::ExpectedContinuation),
            Data::Continue if !self.in_message => return Err(WsError::UnexpectedContinuation),
            Data::Binary | Data::Continue => {}
        }
        if len >> 63 != 0 {
            return Err(WsError::BadLength);
        }
        if len > self.max_frame {
            return Err(WsError::TooLarge {
                size: len,
                limit: self.max_frame,
            });
        }
        self.in_message = !is_final;
        Ok(())
    }
}

/// A close frame's unmasked `payload`, found at `start` of the input.
fn close_step(payload: &[u8], start: usize) -> Result<Step, WsError> {
    let (code, reason) = match payload {
        [] => {
            return Ok(Step::Close {
                code: None,
                reason: start..start,
            })
        }
        [_] => return Err(WsError::CloseTooShort),
        [hi, lo, reason @ ..] => (u16::from_be_bytes([*hi, *lo]), reason),
    };
    let close_code = CloseCode::from(code);
    if !close_code.is_allowed() {
        return Err(WsError::BadCloseCode(code));
    }
    if std::str::from_utf8(reason).is_err() {
        return Err(WsError::CloseReasonNotUtf8);
    }
    Ok(Step::Close {
        code: Some(close_code),
        reason: start + 2..start + payload.len(),
    })
}

/// tungstenite's header parser fails on a reserved opcode; over a slice, nothing else is
/// expected, but any other failure still refuses the frame.
fn header_error(err: TungError) -> WsError {
    match err {
        TungError::Protocol(ProtocolError::InvalidOpcode(op)) => WsError::BadOpcode(op),
        _ => WsError::BadHeader,
    }
}

fn shift(step: Step, by: usize) -> Step {
    let sh = |r: Range<usize>| r.start + by..r.end + by;
    match step {
        Step::Data(r) => Step::Data(sh(r)),
        Step::Ping(r) => Step::Ping(sh(r)),
        Step::Pong(r) => Step::Pong(sh(r)),
        Step::Close { code, reason } => Step::Close {
            code,
            reason: sh(reason),
        },
    }
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
