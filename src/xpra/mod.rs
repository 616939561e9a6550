//! The xpra protocol as the proxy needs it: frame headers, packet encoders (rencode,
//! rencodeplus, bencode), payload compression (zlib, lz4), and the values they carry.

pub mod bencode;
pub mod compress;
pub mod error;
pub mod header;
pub mod rencode;
pub mod value;

pub use error::ProtocolError;
pub use header::{Compression, Encoding, Header, HEADER_LEN};
pub use value::Value;
