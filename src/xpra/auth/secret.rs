//! [`Secret`]: password bytes that never show up in logs or error messages.
//!
//! Debug prints a mask, there is no Display, and the bytes are zeroed (best effort) on drop,
//! so a `{:?}` of a whole [`super::UserEntry`] or [`super::SessionTarget`] is safe to log.

use std::fmt;

/// Password bytes with a masked Debug.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into())
    }

    /// The password itself, for computing a digest. Never log it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // SAFETY: `b` is a valid, aligned, exclusive reference into our own buffer; the
            // volatile write only keeps the compiler from eliding the wipe of a dying value.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_the_bytes() {
        let s = Secret::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), b"hunter2");
    }
}
