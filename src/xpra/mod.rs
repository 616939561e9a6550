//! The xpra protocol as the proxy needs it: frame headers, packet encoders (rencode,
//! rencodeplus, bencode), payload compression (zlib, lz4), the values they carry, and
//! [`auth`]: challenge-response, the multifile, and the choice of a user's session.
//!
//! Everything here is sans-I/O: [`FrameDecoder`] takes bytes from a buffer the session
//! fills, [`encode_frame`] returns bytes for the session to write. Errors are
//! [`ProtocolError`]s whose text can go to the peer as a disconnect reason.

pub mod auth;
pub mod bencode;
pub mod compress;
pub mod error;
pub mod header;
pub mod packet;
pub mod rencode;
pub mod value;

#[cfg(test)]
mod python_tests;

pub use error::ProtocolError;
pub use header::{Compression, Encoding, Header, HEADER_LEN};
pub use packet::{encode_frame, peek_kind, Decoded, Frame, FrameDecoder, Limits, Packet};
pub use value::Value;
