//! xpra's bencode: the fallback packet encoder (flags 0x00), to and from [`Value`].
//!
//! Classic bencode (`i42e`, `4:spam`, `l...e`, `d...e`) with xpra's changes, as its
//! `xpra.net.bencode` (Cython 3.0 and the Python fallback) behaves:
//! - dict keys keep insertion order (no sorting) and may be any type;
//! - `u<len>:<utf8>` is also read, as a text string;
//! - booleans are written as integers (`i1e`/`i0e`) and so come back as [`Value::Int`];
//! - None and floats cannot be written at all (xpra raises), so [`encode`] refuses them;
//! - text is written as its UTF-8 bytes with the byte length.
//!
//! The decoder rejects leading zeros and `-0` as xpra does, never trusts a length beyond
//! its input, bounds integers to [`MAX_INT_CHARS`] characters and nesting to
//! [`MAX_DEPTH`].

use super::error::{ProtocolError, Result};
use super::rencode::{decimal_value, MAX_DEPTH, MAX_INT_CHARS};
use super::value::Value;

const TRUNCATED: ProtocolError = ProtocolError::Corrupt("truncated");

/// Decodes one item from the start of `input`; returns it and the bytes it used.
pub fn decode(input: &[u8]) -> Result<(Value, usize)> {
    let mut d = Decoder { buf: input, pos: 0 };
    let v = d.value(0)?;
    Ok((v, d.pos))
}

/// Appends the encoding of `value` to `out`; fails on None and floats, which xpra's
/// bencode cannot carry. On error `out` may hold part of the value.
pub fn encode(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    match value {
        Value::Int(i) => {
            out.push(b'i');
            out.extend_from_slice(i.to_string().as_bytes());
            out.push(b'e');
        }
        Value::BigInt(s) => {
            out.push(b'i');
            out.extend_from_slice(s.as_bytes());
            out.push(b'e');
        }
        Value::Bool(b) => out.extend_from_slice(if *b { b"i1e" } else { b"i0e" }),
        Value::Str(b) | Value::Bytes(b) => {
            out.extend_from_slice(b.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(b);
        }
        Value::List(items) => encode_list(items, out)?,
        Value::Dict(pairs) => {
            out.push(b'd');
            for (k, v) in pairs {
                encode(k, out)?;
                encode(v, out)?;
            }
            out.push(b'e');
        }
        Value::None => return Err(ProtocolError::Unencodable("None")),
        Value::Float(_) => return Err(ProtocolError::Unencodable("a float")),
    }
    Ok(())
}

/// Appends a list of `items` (what `encode(&Value::List(..))` writes, without the list).
pub fn encode_list(items: &[Value], out: &mut Vec<u8>) -> Result<()> {
    out.push(b'l');
    for item in items {
        encode(item, out)?;
    }
    out.push(b'e');
    Ok(())
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn next(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(TRUNCATED)?;
        self.pos += 1;
        Ok(b)
    }

    /// Consumes the `e` that ends a list or dict if it is next.
    fn at_end(&mut self) -> Result<bool> {
        let end = *self.buf.get(self.pos).ok_or(TRUNCATED)? == b'e';
        self.pos += usize::from(end);
        Ok(end)
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        let code = self.next()?;
        if matches!(code, b'l' | b'd') && depth >= MAX_DEPTH {
            return Err(ProtocolError::Corrupt("nesting too deep"));
        }
        match code {
            b'i' => self.int(),
            b'0'..=b'9' => {
                self.pos -= 1;
                Ok(Value::Str(self.string()?.to_vec()))
            }
            b'u' => {
                let s = self.string()?;
                std::str::from_utf8(s)
                    .map_err(|_| ProtocolError::Corrupt("string is not UTF-8"))?;
                Ok(Value::Str(s.to_vec()))
            }
            b'l' => {
                let mut items = Vec::new();
                while !self.at_end()? {
                    items.push(self.value(depth + 1)?);
                }
                Ok(Value::List(items))
            }
            b'd' => {
                let mut pairs = Vec::new();
                while !self.at_end()? {
                    pairs.push((self.value(depth + 1)?, self.value(depth + 1)?));
                }
                Ok(Value::Dict(pairs))
            }
            _ => Err(ProtocolError::Corrupt("unknown type code")),
        }
    }

    /// `i` was read: decimal digits up to `e`.
    fn int(&mut self) -> Result<Value> {
        let rest = &self.buf[self.pos..];
        let window = &rest[..rest.len().min(MAX_INT_CHARS + 1)];
        let Some(end) = window.iter().position(|&b| b == b'e') else {
            return Err(if rest.len() > MAX_INT_CHARS {
                ProtocolError::Corrupt("integer too long")
            } else {
                TRUNCATED
            });
        };
        let v = decimal_value(&rest[..end])?;
        self.pos += end + 1;
        Ok(v)
    }

    /// `<len>:<bytes>`, the length checked against what is left of the input.
    fn string(&mut self) -> Result<&'a [u8]> {
        const BAD_LEN: ProtocolError = ProtocolError::Corrupt("invalid string length");
        let rest = &self.buf[self.pos..];
        let window = &rest[..rest.len().min(21)];
        let colon = window
            .iter()
            .position(|&b| b == b':')
            .ok_or(if rest.len() > 20 { BAD_LEN } else { TRUNCATED })?;
        let digits = &rest[..colon];
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(BAD_LEN);
        }
        if digits.len() > 1 && digits[0] == b'0' {
            return Err(BAD_LEN);
        }
        let len = digits
            .iter()
            .try_fold(0usize, |n, d| {
                n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
            })
            .ok_or(BAD_LEN)?;
        let body = &rest[colon + 1..];
        if body.len() < len {
            return Err(TRUNCATED);
        }
        self.pos += colon + 1 + len;
        Ok(&body[..len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xpra::rencode::tests::{arb_value, without_bytes};
    use proptest::prelude::*;

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode(v, &mut out).unwrap();
        out
    }

    #[test]
    fn encodes_like_xpra_and_reads_back() {
        let cases: &[(Value, &[u8])] = &[
            (Value::Int(0), b"i0e"),
            (Value::Int(-5), b"i-5e"),
            (Value::Int(i64::MIN), b"i-9223372036854775808e"),
            (
                Value::BigInt("1180591620717411303424".into()),
                b"i1180591620717411303424e",
            ),
            (Value::str("h\u{e9}llo"), b"6:h\xc3\xa9llo"),
            (Value::str(""), b"0:"),
            (
                Value::List(vec![Value::Int(1), Value::List(vec![Value::Int(2)])]),
                b"li1eli2eee",
            ),
            (
                Value::Dict(vec![
                    (Value::str("b"), Value::Int(1)),
                    (Value::Int(1), Value::Int(2)),
                ]),
                b"d1:bi1ei1ei2ee",
            ),
        ];
        for (v, wire) in cases {
            assert_eq!(enc(v), *wire, "{v:?}");
            assert_eq!(decode(wire), Ok((v.clone(), wire.len())));
        }
    }

    #[test]
    fn bool_is_an_int_and_none_and_floats_are_refused() {
        assert_eq!(enc(&Value::Bool(true)), b"i1e");
        assert_eq!(enc(&Value::Bool(false)), b"i0e");
        assert_eq!(decode(b"i1e"), Ok((Value::Int(1), 3)));
        let none = encode(&Value::List(vec![Value::None]), &mut Vec::new()).unwrap_err();
        assert_eq!(none.to_string(), "cannot encode None with bencode");
        assert!(encode(&Value::Float(1.5), &mut Vec::new()).is_err());
    }

    #[test]
    fn reads_unicode_strings_and_bytes_are_strings() {
        assert_eq!(
            decode(b"u6:h\xc3\xa9llo"),
            Ok((Value::str("h\u{e9}llo"), 9))
        );
        assert!(decode(b"u1:\xff").is_err());
        assert_eq!(enc(&Value::Bytes(vec![0, 255])), b"2:\x00\xff");
    }

    #[test]
    fn rejects_what_xpra_rejects_and_truncation() {
        let bad: &[&[u8]] = &[
            b"",
            b"i-0e",
            b"i03e",
            b"ie",
            b"i-e",
            b"i12",
            b"03:abc",
            b"3:ab",
            b"l",
            b"li1e",
            b"d1:a",
            b"x",
            b"e",
            b"-1:a",
            b"1a:b",
            b"99999999999999999999999:a",
        ];
        for b in bad {
            assert!(decode(b).is_err(), "{b:?}");
        }
        let long_int = [b"i".as_slice(), &[b'7'; 64], b"e"].concat();
        assert_eq!(
            decode(&long_int),
            Err(ProtocolError::Corrupt("integer too long"))
        );
        assert_eq!(decode(b"18446744073709551615:x"), Err(TRUNCATED));
    }

    #[test]
    fn nesting_is_limited() {
        let ok = [vec![b'l'; MAX_DEPTH], vec![b'e'; MAX_DEPTH]].concat();
        assert_eq!(decode(&ok).map(|(_, n)| n), Ok(2 * MAX_DEPTH));
        let deep = vec![b'l'; MAX_DEPTH + 1];
        assert_eq!(
            decode(&deep),
            Err(ProtocolError::Corrupt("nesting too deep"))
        );
    }

    /// What a value becomes after a bencode trip: no bytes type, booleans become ints.
    fn as_bencoded(v: Value) -> Value {
        match without_bytes(v) {
            Value::Bool(b) => Value::Int(b.into()),
            Value::List(l) => Value::List(l.into_iter().map(as_bencoded).collect()),
            Value::Dict(d) => Value::Dict(
                d.into_iter()
                    .map(|(k, v)| (as_bencoded(k), as_bencoded(v)))
                    .collect(),
            ),
            other => other,
        }
    }

    /// Replaces what bencode cannot carry (None, floats) with integers.
    fn encodable(v: Value) -> Value {
        match v {
            Value::None => Value::Int(0),
            Value::Float(f) => Value::Int(f as i64),
            Value::List(l) => Value::List(l.into_iter().map(encodable).collect()),
            Value::Dict(d) => Value::Dict(
                d.into_iter()
                    .map(|(k, v)| (encodable(k), encodable(v)))
                    .collect(),
            ),
            other => other,
        }
    }

    proptest! {
        #[test]
        fn round_trips(v in arb_value().prop_map(encodable)) {
            let wire = enc(&v);
            prop_assert_eq!(decode(&wire), Ok((as_bencoded(v), wire.len())));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&data);
        }
    }
}
