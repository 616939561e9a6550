//! The frame gate: walks one direction's xpra byte stream frame by frame and lets every
//! frame through untouched, except the few packet types the proxy must act on.
//!
//! Sans-I/O. For each frame the gate reads the 8-byte header and, for a main packet, only
//! as much of the payload as it takes to learn the packet type (a few bytes; a prefix
//! decompression for compressed payloads). Raw chunks (chunk index > 0: pixels, audio,
//! file data) are never looked into. Bytes that pass are reported as ranges of the input,
//! so the caller writes them straight from its read buffer: a 1 MiB frame costs one header
//! parse, not a decode and re-encode.

use std::ops::Range;

use crate::xpra::header::{Header, HEADER_LEN};
use crate::xpra::packet::peek_kind;
use crate::xpra::ProtocolError;

/// Most payload bytes the gate waits for before deciding a frame is not one it watches.
/// A packet type sits in the first few bytes; a zlib payload may first carry a dynamic
/// Huffman table of a few hundred bytes.
pub const PEEK_MAX: usize = 4096;

/// What the caller does with a stretch of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Forward these input bytes unchanged.
    Pass(Range<usize>),
    /// A whole watched frame (header and payload) of type `kind`.
    Watched { kind: String, frame: Range<usize> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The next byte starts a frame header.
    Header,
    /// This many bytes of the current frame remain to pass through.
    Passing(u64),
}

/// One direction's frame gate.
#[derive(Debug)]
pub struct Gate {
    state: State,
    /// The type of the watched frame at the front of the unconsumed input, typed on an
    /// earlier feed and still being gathered: it is not peeked at again.
    gathering: Option<String>,
    watched: &'static [&'static str],
    max_packet: usize,
    frames: u64,
    peeked: u64,
}

impl Gate {
    /// A gate that reports frames whose type is in `watched` and refuses frames larger than
    /// `max_packet` bytes of payload.
    pub fn new(watched: &'static [&'static str], max_packet: usize) -> Self {
        Self {
            state: State::Header,
            gathering: None,
            watched,
            max_packet,
            frames: 0,
            peeked: 0,
        }
    }

    /// Whether everything passed so far ends on a frame boundary, so a packet of the
    /// proxy's own (a `disconnect`) can be written next without corrupting the stream.
    pub fn at_boundary(&self) -> bool {
        self.state == State::Header
    }

    /// Frames whose header the gate has read.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Payload bytes handed to the type peek so far, over all frames and feeds: what the
    /// gate costs beyond header parsing, whatever the frames hold and however they arrive.
    pub fn peeked(&self) -> u64 {
        self.peeked
    }

    /// Walks `input`, appending what to do with it to `steps`. Returns how many bytes were
    /// dealt with; the rest (a partial header, a payload prefix too short to type, or a
    /// watched frame not complete yet) must be fed again, followed by more bytes.
    pub fn feed(&mut self, input: &[u8], steps: &mut Vec<Step>) -> Result<usize, ProtocolError> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Passing(left) => {
                    if pos == input.len() {
                        break;
                    }
                    let n = left.min((input.len() - pos) as u64) as usize;
                    push_pass(steps, pos..pos + n);
                    pos += n;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::Header
                    } else {
                        State::Passing(left)
                    };
                }
                State::Header => {
                    let rest = &input[pos..];
                    if rest.len() < HEADER_LEN {
                        break;
                    }
                    let header =
                        Header::parse(rest[..HEADER_LEN].try_into().expect("HEADER_LEN bytes"))?;
                    let size = header.size as usize;
                    if size > self.max_packet {
                        return Err(ProtocolError::TooLarge {
                            size,
                            limit: self.max_packet,
                        });
                    }
                    let total = HEADER_LEN + size;
                    if header.chunk != 0 {
                        self.frames += 1;
                        self.state = State::Passing(total as u64);
                        continue;
                    }
                    // At most PEEK_MAX bytes are peeked at, and a watched frame is typed
                    // once: the prefix decoders walk all they are given, and a payload that
                    // inflates to nothing (empty zlib blocks, lz4 length bytes) would
                    // otherwise be walked again at every read while the frame gathers.
                    let payload =
                        &rest[HEADER_LEN..rest.len().min(HEADER_LEN + size.min(PEEK_MAX))];
                    let kind = match self.gathering.take() {
                        Some(kind) => Some(kind),
                        None => {
                            self.peeked += payload.len() as u64;
                            peek_kind(&header, payload)
                        }
                    };
                    match kind {
                        Some(kind) if self.watched.contains(&kind.as_str()) => {
                            if rest.len() < total {
                                self.gathering = Some(kind);
                                break;
                            }
                            self.frames += 1;
                            steps.push(Step::Watched {
                                kind,
                                frame: pos..pos + total,
                            });
                            pos += total;
                        }
                        Some(_) => {
                            self.frames += 1;
                            self.state = State::Passing(total as u64);
                        }
                        None if payload.len() < size.min(PEEK_MAX) => break,
                        None => {
                            // Not typed within PEEK_MAX bytes: not a packet the proxy
                            // reads (those are small or start plainly).
                            self.frames += 1;
                            self.state = State::Passing(total as u64);
                        }
                    }
                }
            }
        }
        Ok(pos)
    }
}

fn push_pass(steps: &mut Vec<Step>, range: Range<usize>) {
    if let Some(Step::Pass(last)) = steps.last_mut() {
        if last.end == range.start {
            last.end = range.end;
            return;
        }
    }
    steps.push(Step::Pass(range));
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
