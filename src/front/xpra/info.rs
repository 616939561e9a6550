//! The proxy's own entries in the session's info: what `xpra info` and the client's
//! session-info window show about the hop through deskrelay.

use crate::xpra::Value;

/// Whether a client hello asks for info instead of a session (`xpra info`).
pub fn is_info_request(caps: &Value) -> bool {
    caps.get("request").and_then(Value::as_str) == Some("info")
        || caps.get("info_request").is_some_and(Value::is_true)
}

/// What the proxy knows about one session at the time of the request.
pub struct ProxyInfo {
    pub shard: usize,
    pub client_rtt_ms: Option<f64>,
    pub server_connect_ms: f64,
    pub bytes_to_server: u64,
    pub bytes_to_client: u64,
}

impl ProxyInfo {
    /// The `proxy` dictionary.
    pub fn to_value(&self) -> Value {
        let mut d = Value::Dict(vec![]);
        d.insert("version", Value::str(env!("CARGO_PKG_VERSION")));
        d.insert("server", Value::str("deskrelay"));
        if let Some(host) = super::caps::proxy_hostname() {
            d.insert("hostname", Value::str(host));
        }
        d.insert("shard", Value::Int(self.shard as i64));
        // Microseconds as integers: bencode (the HTML5 client's encoder) has no floats.
        let mut latency = Value::Dict(vec![]);
        if let Some(rtt) = self.client_rtt_ms {
            latency.insert("client-us", Value::Int((rtt * 1e3) as i64));
        }
        latency.insert(
            "server-us",
            Value::Int((self.server_connect_ms * 1e3) as i64),
        );
        d.insert("latency", latency);
        let mut bytes = Value::Dict(vec![]);
        bytes.insert("to-server", Value::Int(self.bytes_to_server as i64));
        bytes.insert("to-client", Value::Int(self.bytes_to_client as i64));
        d.insert("bytes", bytes);
        d
    }
}

/// Adds the proxy's entries to the backend's answer to an info request: flattened
/// `proxy.*` keys, or a `proxy` dictionary when the client asked for namespaces.
pub fn augment_hello(hello: &mut Value, namespaced: bool, shard: usize, connect_ms: f64) {
    let info = ProxyInfo {
        shard,
        client_rtt_ms: None,
        server_connect_ms: connect_ms,
        bytes_to_server: 0,
        bytes_to_client: 0,
    }
    .to_value();
    if namespaced {
        hello.insert("proxy", info);
    } else {
        flatten_into(hello, "proxy", &info);
    }
}

/// Adds `info` under `proxy` to an `info-response` packet's dictionary.
pub fn augment_info_response(items: &mut [Value], info: &ProxyInfo) {
    if let Some(dict @ Value::Dict(_)) = items.get_mut(1) {
        dict.insert("proxy", info.to_value());
    }
}

fn flatten_into(out: &mut Value, prefix: &str, value: &Value) {
    match value {
        Value::Dict(pairs) => {
            for (k, v) in pairs {
                if let Some(k) = k.as_str() {
                    flatten_into(out, &format!("{prefix}.{k}"), v);
                }
            }
        }
        other => out.insert(prefix, other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattening_names_every_leaf_by_its_path() {
        let mut out = Value::Dict(vec![]);
        let mut inner = Value::Dict(vec![]);
        inner.insert("client-us", Value::Int(1500));
        let mut info = Value::Dict(vec![]);
        info.insert("latency", inner);
        info.insert("shard", Value::Int(1));
        flatten_into(&mut out, "proxy", &info);
        assert_eq!(out.get("proxy.latency.client-us"), Some(&Value::Int(1500)));
        assert_eq!(out.get("proxy.shard"), Some(&Value::Int(1)));
    }
}
