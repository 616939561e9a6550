//! The xpra protocol as the proxy needs it: frame headers, packet encoders (rencode,
//! rencodeplus, bencode), payload compression (zlib, lz4), and the values they carry.

pub mod auth;
pub mod value;

pub use value::Value;
