//! The HTTP side of the front door, without I/O: what a browser's request asks for and the
//! bytes that answer it.

pub mod date;
pub mod error;
pub mod request;
pub mod response;
pub mod static_files;
pub mod tokens;

#[cfg(test)]
mod testdir;
pub mod upgrade;
