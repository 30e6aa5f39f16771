//! Compact JSON output of documents, byte for byte what `serde_json::to_writer` writes (keys in
//! map order, the same escapes, numbers by `serde_json` itself), without the serializer's
//! per-byte escape table walk and per-piece `io::Write` calls. Serializing the documents is a
//! large part of a load; most strings need no escaping at all, which one branch-free pass tells.

use serde_json::{Map, Value};

/// Appends `value` as compact JSON.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            // Writing into a Vec cannot fail; numbers keep serde_json's own formatting.
            let _ = serde_json::to_writer(&mut *out, n);
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => write_map(out, map),
    }
}

/// Appends an object as compact JSON.
pub fn write_map(out: &mut Vec<u8>, map: &Map<String, Value>) {
    out.push(b'{');
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write_value(out, value);
    }
    out.push(b'}');
}

/// The compact JSON of an object.
pub fn map_to_vec(map: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_map(&mut out, map);
    out
}

/// Appends an unsigned integer, as serde_json writes it.
#[inline]
pub fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends a JSON string literal with serde_json's escapes: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`,
/// `\t`, other control characters as `\u00xx`; everything else as it is.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    write_utf8(out, s.as_bytes());
}

/// [`write_str`] for the bytes of a string kept as bytes (UTF-8 checked when it was made), so
/// they need not be checked again.
#[inline]
pub fn write_utf8(out: &mut Vec<u8>, bytes: &[u8]) {
    if needs_escape(bytes) {
        write_escaped(out, bytes);
        return;
    }
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    out.extend_from_slice(bytes);
    out.push(b'"');
}

/// The rare string that needs escapes, out of the way of the common one.
#[cold]
#[inline(never)]
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..0x20 => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether any byte needs an escape, eight bytes at a time: a byte below 0x20, `"` or `\\`
/// sets the high bit of its lane in one of the three masks (borrows can only add lanes above
/// a lane already set, so the answer is exact).
#[inline]
fn needs_escape(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    let mut found = 0u64;
    for chunk in &mut chunks {
        let mut lane = [0u8; 8];
        lane.copy_from_slice(chunk);
        found |= escape_lanes(u64::from_le_bytes(lane));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        if bytes.len() >= 8 {
            // The last eight bytes, overlapping bytes already checked.
            let mut lane = [0u8; 8];
            lane.copy_from_slice(&bytes[bytes.len() - 8..]);
            found |= escape_lanes(u64::from_le_bytes(lane));
        } else {
            // Most names and values are this short: their bytes shifted into a lane of
            // spaces (which need no escape), without a copy call.
            let lane = rest
                .iter()
                .rev()
                .fold(0x2020_2020_2020_2020u64, |lane, &b| {
                    (lane << 8) | u64::from(b)
                });
            found |= escape_lanes(lane);
        }
    }
    found != 0
}

/// The high bit of each lane of `x` that holds a byte below 0x20, `"` or `\\`.
#[inline]
fn escape_lanes(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let quote = x ^ (ONES * u64::from(b'"'));
    let backslash = x ^ (ONES * u64::from(b'\\'));
    ((x.wrapping_sub(ONES * 0x20) & !x)
        | (quote.wrapping_sub(ONES) & !quote)
        | (backslash.wrapping_sub(ONES) & !backslash))
        & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn same_as_serde(v: &Value) {
        let mut ours = Vec::new();
        write_value(&mut ours, v);
        let theirs = serde_json::to_vec(v).expect("serializable");
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
    }

    #[test]
    fn escapes_numbers_and_nesting_match_serde_json() {
        same_as_serde(&json!({
            "a": "plain",
            "b": "quote \" backslash \\ newline \n tab \t cr \r bs \u{8} ff \u{c} nul \u{0} us \u{1f} del \u{7f} é 日本 😀",
            "c": [1, -2, 3.5, 1e300, 0.1, -0.0, u64::MAX, i64::MIN, null, true, false],
            "d": {"": {}, "x": [], "y": [[{}]]},
            "\"key\n": "v",
        }));
    }

    #[test]
    fn escape_check_is_exact_for_every_byte_at_every_lane() {
        for len in 1..=17 {
            for pos in 0..len {
                for b in 0..=0x7fu8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[pos] = b;
                    let expected = b < 0x20 || b == b'"' || b == b'\\';
                    assert_eq!(needs_escape(&bytes), expected, "{bytes:?}");
                }
                let mut high = vec![0xffu8; len];
                high[pos] = 0x80;
                assert!(!needs_escape(&high));
            }
        }
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[\\x00-\\x7f]{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map("[\\x00-\\x7f]{0,12}|\\PC{0,6}", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_value_is_written_as_serde_json_writes_it(v in arb_value()) {
            let mut ours = Vec::new();
            write_value(&mut ours, &v);
            prop_assert_eq!(ours, serde_json::to_vec(&v).expect("serializable"));
        }
    }
}
