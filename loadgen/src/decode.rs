//! Streaming receiver side of [`crate::wire`]: feeds arbitrary chunks of a byte stream,
//! checks every header (session, sequence order) and every payload byte against the pattern,
//! and reports each complete message without buffering payloads.
//!
//! [`Decoder::with_end_marker`] also takes a [`Kind::End`] header as the end of the stream
//! (the upstream of `--protocol ws`, whose relays have no half-close): nothing may follow it.

use crate::wire::{Header, Kind, Pattern, WireError, HEADER_LEN};

/// Verifies the messages of one direction of one session.
pub struct Decoder {
    session: u32,
    next_seq: u64,
    hdr: [u8; HEADER_LEN],
    hdr_fill: usize,
    /// The message whose payload is arriving, and how many payload bytes came so far.
    current: Option<(Header, usize)>,
    /// A [`Kind::End`] header ends the stream (else it is an error like any other kind).
    end_marker: bool,
    /// The end marker has arrived.
    ended: bool,
}

impl Decoder {
    pub fn new(session: u32) -> Self {
        Self {
            session,
            next_seq: 0,
            hdr: [0; HEADER_LEN],
            hdr_fill: 0,
            current: None,
            end_marker: false,
            ended: false,
        }
    }

    /// A decoder whose stream ends with a [`Kind::End`] header rather than end of stream.
    pub fn with_end_marker(session: u32) -> Self {
        Self {
            end_marker: true,
            ..Self::new(session)
        }
    }

    /// True once the end marker has arrived.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Consumes `buf`; calls `done` with the header of each message completed in it.
    pub fn feed(
        &mut self,
        pattern: &Pattern,
        mut buf: &[u8],
        mut done: impl FnMut(&Header),
    ) -> Result<(), WireError> {
        while !buf.is_empty() {
            if self.ended {
                return Err(WireError::AfterEnd);
            }
            match self.current {
                None => {
                    let take = (HEADER_LEN - self.hdr_fill).min(buf.len());
                    self.hdr[self.hdr_fill..self.hdr_fill + take].copy_from_slice(&buf[..take]);
                    self.hdr_fill += take;
                    buf = &buf[take..];
                    if self.hdr_fill == HEADER_LEN {
                        self.hdr_fill = 0;
                        let h = Header::decode(&self.hdr)?;
                        if h.kind == Kind::End && self.end_marker {
                            self.end(&h)?;
                            continue;
                        }
                        let h = self.check(h)?;
                        if h.len == 0 {
                            done(&h);
                        } else {
                            self.current = Some((h, 0));
                        }
                    }
                }
                Some((h, got)) => {
                    let want = h.len as usize - got;
                    let take = want.min(buf.len());
                    let expect =
                        &pattern.payload(h.session, h.seq, h.len as usize)[got..got + take];
                    if expect != &buf[..take] {
                        let at = got + expect.iter().zip(buf).take_while(|(a, b)| a == b).count();
                        return Err(WireError::Corrupt { seq: h.seq, at });
                    }
                    buf = &buf[take..];
                    if take == want {
                        self.current = None;
                        done(&h);
                    } else {
                        self.current = Some((h, got + take));
                    }
                }
            }
        }
        Ok(())
    }

    /// At end of stream: an error if it ended inside a message.
    pub fn finish(&self) -> Result<(), WireError> {
        if !self.at_boundary() {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// True between messages (no header or payload half read).
    pub fn at_boundary(&self) -> bool {
        self.hdr_fill == 0 && self.current.is_none()
    }

    /// The end marker: of this session, without payload.
    fn end(&mut self, h: &Header) -> Result<(), WireError> {
        if h.session != self.session {
            return Err(WireError::WrongSession {
                want: self.session,
                got: h.session,
            });
        }
        if h.len != 0 {
            return Err(WireError::BadKind(h.kind as u16));
        }
        self.ended = true;
        Ok(())
    }

    fn check(&mut self, h: Header) -> Result<Header, WireError> {
        if h.kind != Kind::Data {
            return Err(WireError::BadKind(h.kind as u16));
        }
        if h.session != self.session {
            return Err(WireError::WrongSession {
                want: self.session,
                got: h.session,
            });
        }
        if h.seq != self.next_seq {
            return Err(WireError::OutOfOrder {
                want: self.next_seq,
                got: h.seq,
            });
        }
        self.next_seq += 1;
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(p: &Pattern, session: u32, seq: u64, len: u32) -> Vec<u8> {
        let h = Header {
            kind: Kind::Data,
            session,
            len,
            seq,
            due_ns: seq * 1000,
        };
        let mut v = h.encode().to_vec();
        v.extend_from_slice(p.payload(session, seq, len as usize));
        v
    }

    #[test]
    fn byte_by_byte_stream_decodes() {
        let p = Pattern::new();
        let mut stream = message(&p, 3, 0, 100);
        stream.extend(message(&p, 3, 1, 0));
        stream.extend(message(&p, 3, 2, 5000));
        let mut d = Decoder::new(3);
        let mut seen = Vec::new();
        for b in stream.chunks(1) {
            d.feed(&p, b, |h| seen.push(h.seq)).unwrap();
        }
        d.finish().unwrap();
        assert_eq!(seen, vec![0, 1, 2]);
    }

    #[test]
    fn detects_corruption_gap_and_truncation() {
        let p = Pattern::new();
        let mut bad = message(&p, 1, 0, 64);
        bad[HEADER_LEN + 10] ^= 1;
        let err = Decoder::new(1).feed(&p, &bad, |_| {}).unwrap_err();
        assert_eq!(err, WireError::Corrupt { seq: 0, at: 10 });

        let gap = message(&p, 1, 1, 64);
        let err = Decoder::new(1).feed(&p, &gap, |_| {}).unwrap_err();
        assert_eq!(err, WireError::OutOfOrder { want: 0, got: 1 });

        let other = message(&p, 2, 0, 64);
        let err = Decoder::new(1).feed(&p, &other, |_| {}).unwrap_err();
        assert!(matches!(err, WireError::WrongSession { .. }));

        let mut d = Decoder::new(1);
        d.feed(&p, &message(&p, 1, 0, 64)[..40], |_| {}).unwrap();
        assert_eq!(d.finish(), Err(WireError::Truncated));
    }

    fn end(session: u32) -> Vec<u8> {
        Header {
            kind: Kind::End,
            session,
            len: 0,
            seq: 0,
            due_ns: 0,
        }
        .encode()
        .to_vec()
    }

    #[test]
    fn the_end_marker_ends_the_stream_where_it_is_expected_only() {
        let p = Pattern::new();
        let mut stream = message(&p, 4, 0, 300);
        stream.extend(end(4));
        let mut d = Decoder::with_end_marker(4);
        let mut seen = 0;
        for b in stream.chunks(7) {
            assert!(!d.ended());
            d.feed(&p, b, |_| seen += 1).unwrap();
        }
        assert!(d.ended() && seen == 1);
        d.finish().unwrap();
        assert_eq!(d.feed(&p, &[0], |_| {}), Err(WireError::AfterEnd));

        // A raw stream knows no end marker; another session's is refused.
        assert_eq!(
            Decoder::new(4).feed(&p, &end(4), |_| {}),
            Err(WireError::BadKind(3))
        );
        assert!(matches!(
            Decoder::with_end_marker(4).feed(&p, &end(5), |_| {}),
            Err(WireError::WrongSession { .. })
        ));
    }
}
