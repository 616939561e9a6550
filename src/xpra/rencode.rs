//! rencode and rencodeplus: xpra's compact packet encoders, to and from [`Value`].
//!
//! The first byte of each item is its type code: 0..=43 small ints, 70..=101 ints -1..=-32,
//! 62..=65 big-endian i8/i16/i32/i64, 61 a decimal big int ended by 127, 44 float64 and 66
//! float32, 67/68/69 true/false/None, 128..=191 strings of 0..=63 bytes, 192..=255 lists of
//! 0..=63 items, 102..=126 dicts of 0..=24 pairs, 59/60 lists/dicts ended by 127, and a
//! digit starts a long string written `len:bytes`.
//!
//! rencodeplus (xpra 4.3+) differs in three ways: binary data is written `len/bytes` at any
//! length (decoded as [`Value::Bytes`]), strings are UTF-8 text (checked on decode), and
//! floats are always float64.
//!
//! The encoder picks the same forms as Python's rencode, so its bytes match the real peers'.
//! One deliberate exception: Python's `rencode.dumps` writes every float as float32 by
//! default, losing precision; we write float32 only when that is exact (always true of a
//! float a 3.1 peer sent us, so forwarded floats keep their bytes) and float64 otherwise.
//!
//! The decoder never trusts a length beyond its input and stops at [`MAX_DEPTH`] nested
//! containers, so hostile input costs at most a bounded walk over the bytes given.

use super::error::{ProtocolError, Result};
use super::value::Value;

/// Containers nested deeper than this are rejected (xpra's own packets nest 5 or 6 deep).
pub const MAX_DEPTH: usize = 64;
/// Longest decimal big int, sign included, that rencode accepts (its MAX_INT_LENGTH - 1).
pub const MAX_INT_CHARS: usize = 63;

const FLOAT64: u8 = 44;
const LIST: u8 = 59;
const DICT: u8 = 60;
const BIG_INT: u8 = 61;
const INT1: u8 = 62;
const INT2: u8 = 63;
const INT4: u8 = 64;
const INT8: u8 = 65;
const FLOAT32: u8 = 66;
const TRUE: u8 = 67;
const FALSE: u8 = 68;
const NONE: u8 = 69;
const TERM: u8 = 127;
const POS_FIXED_COUNT: i64 = 44;
const NEG_FIXED_START: u8 = 70;
const NEG_FIXED_COUNT: i64 = 32;
const DICT_FIXED_START: u8 = 102;
const DICT_FIXED_COUNT: usize = 25;
const STR_FIXED_START: u8 = 128;
const STR_FIXED_COUNT: usize = 64;
const LIST_FIXED_START: u8 = 192;
const LIST_FIXED_COUNT: usize = 64;

const TRUNCATED: ProtocolError = ProtocolError::Corrupt("truncated");

/// Decodes one item from the start of `input`; returns it and the bytes it used.
/// `plus` selects rencodeplus.
pub fn decode(input: &[u8], plus: bool) -> Result<(Value, usize)> {
    let mut d = Decoder {
        buf: input,
        pos: 0,
        plus,
    };
    let v = d.value(0)?;
    Ok((v, d.pos))
}

/// Appends the encoding of `value` to `out`. `plus` selects rencodeplus.
///
/// A [`Value::BigInt`] must hold decimal digits (as the decoders produce); one that fits in
/// an i64 is written in the compact integer form, as Python would.
pub fn encode(value: &Value, plus: bool, out: &mut Vec<u8>) {
    match value {
        Value::Int(i) => encode_int(*i, out),
        Value::BigInt(s) => match s.parse::<i64>() {
            Ok(i) => encode_int(i, out),
            Err(_) => {
                debug_assert!(is_decimal(s.as_bytes()), "BigInt is not decimal: {s:?}");
                out.push(BIG_INT);
                out.extend_from_slice(s.as_bytes());
                out.push(TERM);
            }
        },
        Value::Float(f) => {
            let narrow = *f as f32;
            if !plus && f64::from(narrow).to_bits() == f.to_bits() {
                out.push(FLOAT32);
                out.extend_from_slice(&narrow.to_be_bytes());
            } else {
                out.push(FLOAT64);
                out.extend_from_slice(&f.to_be_bytes());
            }
        }
        Value::Bool(true) => out.push(TRUE),
        Value::Bool(false) => out.push(FALSE),
        Value::None => out.push(NONE),
        Value::Bytes(b) if plus => {
            out.extend_from_slice(b.len().to_string().as_bytes());
            out.push(b'/');
            out.extend_from_slice(b);
        }
        Value::Str(b) | Value::Bytes(b) => {
            if b.len() < STR_FIXED_COUNT {
                out.push(STR_FIXED_START + b.len() as u8);
            } else {
                out.extend_from_slice(b.len().to_string().as_bytes());
                out.push(b':');
            }
            out.extend_from_slice(b);
        }
        Value::List(items) => encode_list(items, plus, out),
        Value::Dict(pairs) => {
            let fixed = pairs.len() < DICT_FIXED_COUNT;
            out.push(if fixed {
                DICT_FIXED_START + pairs.len() as u8
            } else {
                DICT
            });
            for (k, v) in pairs {
                encode(k, plus, out);
                encode(v, plus, out);
            }
            if !fixed {
                out.push(TERM);
            }
        }
    }
}

/// Appends a list of `items` (what `encode(&Value::List(..))` writes, without the list).
pub fn encode_list(items: &[Value], plus: bool, out: &mut Vec<u8>) {
    let fixed = items.len() < LIST_FIXED_COUNT;
    out.push(if fixed {
        LIST_FIXED_START + items.len() as u8
    } else {
        LIST
    });
    for item in items {
        encode(item, plus, out);
    }
    if !fixed {
        out.push(TERM);
    }
}

/// The smallest form Python's rencode picks for an integer.
fn encode_int(i: i64, out: &mut Vec<u8>) {
    if (0..POS_FIXED_COUNT).contains(&i) {
        out.push(i as u8);
    } else if (-NEG_FIXED_COUNT..0).contains(&i) {
        out.push((i64::from(NEG_FIXED_START) - 1 - i) as u8);
    } else if let Ok(b) = i8::try_from(i) {
        out.push(INT1);
        out.extend_from_slice(&b.to_be_bytes());
    } else if let Ok(s) = i16::try_from(i) {
        out.push(INT2);
        out.extend_from_slice(&s.to_be_bytes());
    } else if let Ok(l) = i32::try_from(i) {
        out.push(INT4);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(INT8);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// `-?[0-9]+` without leading zeros and without `-0`: the only integers Python writes.
pub(crate) fn is_decimal(s: &[u8]) -> bool {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || (digits.len() == 1 && s.len() == 1))
}

/// A decimal integer as a Value: Int when it fits an i64, BigInt otherwise.
pub(crate) fn decimal_value(s: &[u8]) -> Result<Value> {
    if !is_decimal(s) {
        return Err(ProtocolError::Corrupt("invalid integer"));
    }
    // is_decimal admits ASCII only, so this is valid UTF-8.
    let text = std::str::from_utf8(s).map_err(|_| ProtocolError::Corrupt("invalid integer"))?;
    Ok(match text.parse::<i64>() {
        Ok(i) => Value::Int(i),
        Err(_) => Value::BigInt(text.to_owned()),
    })
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    plus: bool,
}

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() - self.pos < n {
            return Err(TRUNCATED);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// Consumes the terminator if it is next.
    fn at_term(&mut self) -> Result<bool> {
        let end = *self.buf.get(self.pos).ok_or(TRUNCATED)? == TERM;
        self.pos += usize::from(end);
        Ok(end)
    }

    fn text(&self, bytes: &[u8]) -> Result<Value> {
        if self.plus && std::str::from_utf8(bytes).is_err() {
            return Err(ProtocolError::Corrupt("string is not UTF-8"));
        }
        Ok(Value::Str(bytes.to_vec()))
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        let code = self.byte()?;
        let is_container =
            matches!(code, LIST | DICT | DICT_FIXED_START..=126 | LIST_FIXED_START..);
        if is_container && depth >= MAX_DEPTH {
            return Err(ProtocolError::Corrupt("nesting too deep"));
        }
        Ok(match code {
            0..=43 => Value::Int(i64::from(code)),
            FLOAT64 => Value::Float(f64::from_be_bytes(self.array()?)),
            b'0'..=b'9' => self.long_string()?,
            LIST => {
                let mut items = Vec::new();
                while !self.at_term()? {
                    items.push(self.value(depth + 1)?);
                }
                Value::List(items)
            }
            DICT => {
                let mut pairs = Vec::new();
                while !self.at_term()? {
                    pairs.push((self.value(depth + 1)?, self.value(depth + 1)?));
                }
                Value::Dict(pairs)
            }
            BIG_INT => self.big_int()?,
            INT1 => Value::Int(i8::from_be_bytes(self.array()?).into()),
            INT2 => Value::Int(i16::from_be_bytes(self.array()?).into()),
            INT4 => Value::Int(i32::from_be_bytes(self.array()?).into()),
            INT8 => Value::Int(i64::from_be_bytes(self.array()?)),
            FLOAT32 => Value::Float(f32::from_be_bytes(self.array()?).into()),
            TRUE => Value::Bool(true),
            FALSE => Value::Bool(false),
            NONE => Value::None,
            NEG_FIXED_START..=101 => Value::Int(i64::from(NEG_FIXED_START) - 1 - i64::from(code)),
            DICT_FIXED_START..=126 => {
                let n = usize::from(code - DICT_FIXED_START);
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    pairs.push((self.value(depth + 1)?, self.value(depth + 1)?));
                }
                Value::Dict(pairs)
            }
            STR_FIXED_START..=191 => {
                let s = self.take(usize::from(code - STR_FIXED_START))?;
                self.text(s)?
            }
            LIST_FIXED_START.. => {
                let n = usize::from(code - LIST_FIXED_START);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::List(items)
            }
            _ => return Err(ProtocolError::Corrupt("unknown type code")),
        })
    }

    /// `len:bytes` (text) or, in rencodeplus, `len/bytes` (binary); the first digit is read.
    fn long_string(&mut self) -> Result<Value> {
        let start = self.pos - 1;
        // 20 digits overflow no u64 check below and already exceed any real input.
        let digits_end = self.buf[start..]
            .iter()
            .take(21)
            .position(|b| !b.is_ascii_digit())
            .map(|n| start + n)
            .ok_or(if self.buf.len() - start > 20 {
                ProtocolError::Corrupt("invalid string length")
            } else {
                TRUNCATED
            })?;
        let digits = &self.buf[start..digits_end];
        if digits.len() > 1 && digits[0] == b'0' {
            return Err(ProtocolError::Corrupt("invalid string length"));
        }
        let len = digits
            .iter()
            .try_fold(0usize, |n, d| {
                n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
            })
            .ok_or(ProtocolError::Corrupt("invalid string length"))?;
        self.pos = digits_end;
        match self.byte()? {
            b':' => {
                let s = self.take(len)?;
                self.text(s)
            }
            b'/' if self.plus => Ok(Value::Bytes(self.take(len)?.to_vec())),
            _ => Err(ProtocolError::Corrupt("invalid string length")),
        }
    }

    /// Decimal digits up to the terminator, at most [`MAX_INT_CHARS`] of them.
    fn big_int(&mut self) -> Result<Value> {
        let rest = &self.buf[self.pos..];
        let window = &rest[..rest.len().min(MAX_INT_CHARS + 1)];
        let Some(end) = window.iter().position(|&b| b == TERM) else {
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
}

#[cfg(test)]
pub(crate) mod tests;
