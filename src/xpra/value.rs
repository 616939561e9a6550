//! [`Value`]: one decoded item of an xpra packet, whatever encoder carried it.
//!
//! xpra packets are lists of dynamically typed items (rencode, rencodeplus, bencode). The
//! proxy decodes only the control packets it must read or rewrite (hello, challenge,
//! disconnect, info), so one small tree type is enough; dictionaries keep their order so a
//! rewritten hello differs from the original only where the proxy changed it.

/// One item of an xpra packet.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    /// An integer beyond i64 (rencode's decimal big int), kept as its ASCII digits.
    BigInt(String),
    Float(f64),
    Bool(bool),
    None,
    /// A string item: rencode and bencode strings, rencodeplus text. Usually UTF-8, not always.
    Str(Vec<u8>),
    /// rencodeplus binary bytes (`len/`); rencode and bencode write these as strings.
    Bytes(Vec<u8>),
    List(Vec<Value>),
    /// Key/value pairs in wire order.
    Dict(Vec<(Value, Value)>),
}

impl Value {
    /// A string item from text.
    pub fn str(s: &str) -> Value {
        Value::Str(s.as_bytes().to_vec())
    }

    /// The text of a string or bytes item, if it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(b) | Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The raw bytes of a string or bytes item.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str(b) | Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    /// Truthiness as xpra's capability checks read it.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::None => false,
            Value::Str(b) | Value::Bytes(b) => !b.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Dict(d) => !d.is_empty(),
            Value::BigInt(_) | Value::Float(_) => true,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The value under the string key `key` of a dictionary.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(pairs) => pairs
                .iter()
                .find(|(k, _)| k.as_bytes() == Some(key.as_bytes()))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Sets `key` in a dictionary, replacing an existing entry in place. No-op on non-dicts.
    pub fn insert(&mut self, key: &str, value: Value) {
        if let Value::Dict(pairs) = self {
            match pairs
                .iter_mut()
                .find(|(k, _)| k.as_bytes() == Some(key.as_bytes()))
            {
                Some((_, v)) => *v = value,
                None => pairs.push((Value::str(key), value)),
            }
        }
    }

    /// Removes every entry whose string key satisfies `drop`. No-op on non-dicts.
    pub fn remove_keys(&mut self, mut drop: impl FnMut(&str) -> bool) {
        if let Value::Dict(pairs) = self {
            pairs.retain(|(k, _)| !k.as_str().is_some_and(&mut drop));
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::str(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dict_insert_replaces_in_place_and_remove_filters_by_key() {
        let mut d = Value::Dict(vec![
            (Value::str("a"), Value::Int(1)),
            (Value::str("challenge_response"), Value::str("x")),
            (Value::str("b"), Value::Int(2)),
        ]);
        d.insert("a", Value::Int(9));
        d.insert("c", Value::Bool(true));
        d.remove_keys(|k| k.starts_with("challenge"));
        assert_eq!(
            d,
            Value::Dict(vec![
                (Value::str("a"), Value::Int(9)),
                (Value::str("b"), Value::Int(2)),
                (Value::str("c"), Value::Bool(true)),
            ])
        );
        assert_eq!(d.get("b"), Some(&Value::Int(2)));
        assert_eq!(d.get("zz"), None);
    }
}
