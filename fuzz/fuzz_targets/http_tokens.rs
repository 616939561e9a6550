//! `http_tokens`: the `--tokens` file parser (`front::http::tokens::parse`, websockify's
//! `token: host:port` format) and the target address parser under it.
//!
//! Input: the file's bytes.
//!
//! Guards:
//! - never panics;
//! - a refusal names a line of the file (1-based);
//! - every token is non-empty without white space, and every target prints (as the logs
//!   show it) to text that parses back to the same target;
//! - the map written back as a file parses to the same map.
#![no_main]

use deskrelay::front::http::tokens::parse;
use deskrelay::front::http::Target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(t) = Target::parse(text.trim()) {
            check_target(&t);
        }
    }
    match parse(data) {
        Ok(map) => {
            let mut file = String::new();
            for (token, target) in &map {
                assert!(!token.is_empty() && !token.contains(char::is_whitespace));
                check_target(target);
                file.push_str(&format!("{token}: {target}\n"));
            }
            assert_eq!(
                parse(file.as_bytes()),
                Ok(map),
                "the map written back:\n{file}"
            );
        }
        Err((line, _)) => {
            let lines = data.split(|&b| b == b'\n').count();
            assert!((1..=lines).contains(&line), "line {line} of {lines}");
        }
    }
});

fn check_target(t: &Target) {
    let shown = t.to_string();
    assert_eq!(Target::parse(&shown).as_ref(), Ok(t), "{shown:?}");
}
