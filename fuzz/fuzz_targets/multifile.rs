//! `multifile`: xpra's `multifile` password file parser (`xpra::auth::multifile::parse`) and
//! the display strings in it (`SessionTarget`, also what a client's hello may ask for).
//!
//! Input: the file's bytes.
//!
//! Guards:
//! - never panics (uid and gid names are looked up for real, through NSS);
//! - a refusal names a line of the file (1-based);
//! - an accepted entry has a username and a password, no root uid or gid, and sits on a
//!   line of the file;
//! - a display prints (as logs show it, without credentials) to text that parses back to
//!   the same place, and that the display `matches` when a client asks for it.
#![no_main]

use deskrelay::xpra::auth::multifile::parse;
use deskrelay::xpra::auth::SessionTarget;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(t) = text.parse::<SessionTarget>() {
            check_display(&t);
        }
    }
    // Python's splitlines, as the parser reads the file: lines end at \n, \r or \r\n.
    let lines = data.split(|&b| b == b'\n' || b == b'\r').count();
    match parse(data) {
        Ok(users) => {
            for (name, e) in users.iter() {
                assert_eq!(name, &e.username);
                assert!(!e.username.is_empty() && !e.username.contains('|'));
                assert!(!e.password.is_empty());
                assert!(e.uid != 0 && e.gid != 0, "root in {e:?}");
                assert!((1..=lines).contains(&e.line));
                e.displays.iter().for_each(check_display);
            }
        }
        Err(e) => assert!((1..=lines).contains(&e.line), "line {} of {lines}", e.line),
    }
});

fn check_display(t: &SessionTarget) {
    let shown = t.to_string();
    let again: SessionTarget = shown.parse().unwrap_or_else(|e| panic!("{shown:?}: {e}"));
    let same_place = match (t, &again) {
        (SessionTarget::Local { display: a }, SessionTarget::Local { display: b }) => a == b,
        (
            SessionTarget::Tcp {
                host: h1, port: p1, ..
            },
            SessionTarget::Tcp {
                host: h2, port: p2, ..
            },
        ) => h1 == h2 && p1 == p2,
        _ => false,
    };
    assert!(same_place, "{t:?} shown as {shown:?} reads as {again:?}");
    assert!(t.matches(&shown), "{t:?} does not match {shown:?}");
}
