//! `http_path`: how a request path names a file: `percent_decode` and
//! `WebRoot::resolve` against a small web root holding a hidden file, a FIFO, a link inside
//! the root and one leading out of it.
//!
//! Input: a flag byte (`+` as space), then the path (lossy UTF-8: httparse lets through
//! less than this, so the resolver sees more than it ever will from a request).
//!
//! Guards:
//! - never panics;
//! - `percent_decode` never grows its input, leaves text without `%` as it is, and reads
//!   back any byte string written as `%XX` escapes;
//! - a path resolves only to a regular file under the web root, never hidden, never
//!   through the link that leads out; a redirect goes to a local path (one leading `/`,
//!   never `//host`), ends with `/`, carries no byte that could break a header, and
//!   resolves itself to a file.
#![no_main]

use deskrelay::front::http::request::percent_decode;
use deskrelay::front::http::Resolved;
use deskrelay_fuzz::{web_root, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let plus = input.byte() & 1 != 0;
    let raw = input.rest();
    let path = String::from_utf8_lossy(raw);

    check_percent(&path, raw, plus);

    let root = web_root();
    match root.resolve(&path) {
        Ok(Resolved::File(f)) => {
            assert!(
                f.path.starts_with(root.root()),
                "{:?} outside the root",
                f.path
            );
            let inside = f.path.strip_prefix(root.root()).expect("under the root");
            assert!(
                !inside
                    .components()
                    .any(|c| c.as_os_str().as_encoded_bytes().starts_with(b".")),
                "hidden file {inside:?} served"
            );
            assert!(std::fs::metadata(&f.path).is_ok_and(|m| m.is_file()));
        }
        Ok(Resolved::Redirect(to)) => {
            assert!(
                to.starts_with('/') && !to.starts_with("//"),
                "redirect to {to:?}"
            );
            assert!(to.ends_with('/'));
            assert!(
                to.bytes().all(|b| b.is_ascii_graphic()),
                "redirect to {to:?}"
            );
            assert!(
                matches!(root.resolve(&to), Ok(Resolved::File(_))),
                "redirect to {to:?} from {path:?} leads nowhere"
            );
        }
        Err(_) => {}
    }
});

fn check_percent(s: &str, raw: &[u8], plus: bool) {
    if let Some(out) = percent_decode(s, plus) {
        assert!(out.len() <= s.len());
    }
    let escapes = s.contains('%') || (plus && s.contains('+'));
    if !escapes {
        assert_eq!(percent_decode(s, plus).as_deref(), Some(s.as_bytes()));
    }
    let escaped: String = raw.iter().map(|b| format!("%{b:02x}")).collect();
    assert_eq!(percent_decode(&escaped, plus).as_deref(), Some(raw));
}
