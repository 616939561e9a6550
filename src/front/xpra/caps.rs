//! Rewriting hellos on their way through the proxy.
//!
//! The proxy forwards frames verbatim after the handshake, so both ends must keep speaking
//! a format it can read: packet types as strings. xpra peers replace packet types with
//! integers when the other side's hello offers `aliases`; the proxy removes that key from
//! both hellos. Authentication and encryption belong to each leg and are removed too.
//! Compression and encoder capabilities pass unchanged: each receiver decodes by the frame
//! header, so the client and the server agree on them directly.

use crate::xpra::Value;

/// Keys (by prefix) of the client's hello that belong to the client's leg only.
const CLIENT_LEG_ONLY: &[&str] = &["challenge", "cipher", "aliases"];
/// Keys of the backend's hello the client must not see.
const SERVER_LEG_ONLY: &[&str] = &["aliases"];

/// session_options a multifile line may set on the backend leg, as xpra's proxy allows.
const SESSION_OPTIONS: &[&str] = &[
    "compression_level",
    "lz4",
    "lzo",
    "zlib",
    "rencode",
    "bencode",
    "yaml",
];

/// The client's hello as the backend gets it: leg-specific keys removed, the proxy's own
/// entries and the session's options added.
pub fn hello_for_backend(
    mut caps: Value,
    username: Option<&str>,
    session_options: &[(String, String)],
) -> Value {
    caps.remove_keys(|k| CLIENT_LEG_ONLY.iter().any(|p| k.starts_with(p)));
    if let Some(user) = username {
        caps.insert("username", Value::str(user));
    }
    for (key, value) in session_options {
        if SESSION_OPTIONS.contains(&key.as_str()) {
            caps.insert(key, option_value(value));
        }
    }
    add_proxy_marks(&mut caps);
    caps
}

/// The backend's hello as the client gets it.
pub fn hello_for_client(mut caps: Value) -> Value {
    caps.remove_keys(|k| SERVER_LEG_ONLY.iter().any(|p| k.starts_with(p)));
    add_proxy_marks(&mut caps);
    caps
}

fn add_proxy_marks(caps: &mut Value) {
    caps.insert("proxy", Value::Bool(true));
    caps.insert("proxy.version", Value::str(env!("CARGO_PKG_VERSION")));
    caps.insert("proxy.server", Value::str("deskrelay"));
    if let Some(host) = proxy_hostname() {
        caps.insert("proxy.hostname", Value::str(host));
    }
}

/// This host's name, looked up once (it was a uname(2) per hello).
pub fn proxy_hostname() -> Option<&'static str> {
    static NAME: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    NAME.get_or_init(crate::xpra::auth::sys::hostname)
        .as_deref()
}

/// A session option's text as the typed value xpra expects (numbers and booleans).
fn option_value(text: &str) -> Value {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Value::Bool(true),
        "false" | "no" | "off" => Value::Bool(false),
        _ => text
            .parse::<i64>()
            .map(Value::Int)
            .unwrap_or_else(|_| Value::str(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(pairs: &[(&str, Value)]) -> Value {
        Value::Dict(
            pairs
                .iter()
                .map(|(k, v)| (Value::str(k), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn backend_hello_drops_auth_cipher_and_aliases_and_keeps_compression() {
        let client = dict(&[
            ("version", Value::str("3.1.3")),
            ("challenge_response", Value::str("secret-derived")),
            ("challenge_client_salt", Value::str("salt")),
            ("cipher", Value::str("AES")),
            ("cipher.iv", Value::str("iv")),
            ("aliases", Value::Dict(vec![])),
            ("lz4", Value::Bool(true)),
            ("compression_level", Value::Int(1)),
        ]);
        let opts = vec![
            ("compression_level".to_string(), "0".to_string()),
            ("not-allowed".to_string(), "x".to_string()),
        ];
        let hello = hello_for_backend(client, Some("alice"), &opts);
        for gone in [
            "challenge_response",
            "challenge_client_salt",
            "cipher",
            "cipher.iv",
            "aliases",
            "not-allowed",
        ] {
            assert_eq!(hello.get(gone), None, "{gone} must not reach the backend");
        }
        assert_eq!(hello.get("lz4"), Some(&Value::Bool(true)));
        assert_eq!(hello.get("compression_level"), Some(&Value::Int(0)));
        assert_eq!(hello.get("username").and_then(Value::as_str), Some("alice"));
        assert_eq!(hello.get("proxy"), Some(&Value::Bool(true)));
    }

    #[test]
    fn client_hello_loses_only_aliases() {
        let server = dict(&[
            ("aliases", Value::Dict(vec![])),
            ("rencode", Value::Bool(true)),
        ]);
        let hello = hello_for_client(server);
        assert_eq!(hello.get("aliases"), None);
        assert_eq!(hello.get("rencode"), Some(&Value::Bool(true)));
    }
}
