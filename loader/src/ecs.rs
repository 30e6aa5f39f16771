//! Building ECS documents: dotted field names become nested objects, `related.*` lists stay
//! free of duplicates.

use serde_json::{Map, Value};

/// A document under construction (the `_source` sent to OpenSearch).
pub type Doc = Map<String, Value>;

/// Sets `dotted` (for example `source.geo.country_iso_code`) to `value`, creating the objects
/// on the way. A non-object found on the way is replaced: ECS names win over stray scalars.
/// Names of objects that already exist are not allocated again: every document gets dozens of
/// fields this way.
pub fn set(doc: &mut Doc, dotted: &str, value: impl Into<Value>) {
    put(doc, dotted, value.into());
}

fn put(doc: &mut Doc, dotted: &str, value: Value) {
    match first_name(dotted) {
        (_, None) => {
            // One search; the field is new almost always.
            doc.insert(dotted.to_owned(), value);
        }
        (head, Some(rest)) => {
            if let Some(Value::Object(inner)) = doc.get_mut(head) {
                put(inner, rest, value);
                return;
            }
            let mut inner = Map::new();
            put(&mut inner, rest, value);
            doc.insert(head.to_owned(), Value::Object(inner));
        }
    }
}

/// Sets the field only when `value` is present and not an empty string.
pub fn set_opt<V: Into<Value>>(doc: &mut Doc, dotted: &str, value: Option<V>) {
    if let Some(v) = value {
        let v = v.into();
        if !matches!(&v, Value::String(s) if s.is_empty()) && !v.is_null() {
            put(doc, dotted, v);
        }
    }
}

/// Looks up a dotted path in a JSON value.
pub fn get<'a>(value: &'a Value, dotted: &str) -> Option<&'a Value> {
    let (first, rest) = first_name(dotted);
    let value = value.as_object()?.get(first)?;
    match rest {
        Some(rest) => get(value, rest),
        None => Some(value),
    }
}

/// Looks up a dotted path in a document.
pub fn get_in<'a>(doc: &'a Doc, dotted: &str) -> Option<&'a Value> {
    let (first, rest) = first_name(dotted);
    let value = doc.get(first)?;
    match rest {
        Some(rest) => get(value, rest),
        None => Some(value),
    }
}

/// The name before the first dot and the rest after it: a byte search, where a `char`
/// pattern's searcher cost more than the lookups of the dozens of paths a normalizer reads
/// and writes.
#[inline]
pub fn first_name(dotted: &str) -> (&str, Option<&str>) {
    match dotted.as_bytes().iter().position(|&b| b == b'.') {
        Some(dot) => (&dotted[..dot], Some(&dotted[dot + 1..])),
        None => (dotted, None),
    }
}

/// The string at a dotted path, when it is a non-empty string.
pub fn get_str<'a>(value: &'a Value, dotted: &str) -> Option<&'a str> {
    get(value, dotted)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Appends to the list at `related.<kind>` (`ip`, `user`, `hash`, `hosts`) unless already there.
pub fn add_related(doc: &mut Doc, kind: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    let related = doc
        .entry("related".to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !related.is_object() {
        *related = Value::Object(Map::new());
    }
    let Value::Object(related) = related else {
        return;
    };
    let list = related
        .entry(kind.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    if let Value::Array(items) = list
        && !items.iter().any(|v| v.as_str() == Some(value))
    {
        items.push(Value::String(value.to_owned()));
    }
}

/// An IP address from its text: dotted IPv4 (nearly every address of a log) without the
/// general parser's machinery, anything else through it. Accepts exactly what
/// `str::parse::<IpAddr>` accepts.
pub fn parse_ip(text: &str) -> Option<std::net::IpAddr> {
    fn dotted(bytes: &[u8]) -> Option<[u8; 4]> {
        let mut octets = [0u8; 4];
        let mut parts = bytes.split(|&b| b == b'.');
        for octet in &mut octets {
            let part = parts.next()?;
            // One to three digits, no leading zero (as the standard parser).
            if part.is_empty() || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
                return None;
            }
            let mut n: u16 = 0;
            for &b in part {
                if !b.is_ascii_digit() {
                    return None;
                }
                n = n * 10 + u16::from(b - b'0');
            }
            *octet = u8::try_from(n).ok()?;
        }
        parts.next().is_none().then_some(octets)
    }
    match dotted(text.as_bytes()) {
        Some(octets) => Some(std::net::IpAddr::from(octets)),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_are_read_name_by_name_even_with_empty_names() {
        let value = json!({"a": {"": {"b": 1}, "c": 2}, "": {"d": 3}, "e": 4});
        let Value::Object(doc) = value.clone() else {
            unreachable!()
        };
        let by_split = |dotted: &str| {
            dotted
                .split('.')
                .try_fold(&value, |current, part| current.as_object()?.get(part))
        };
        for dotted in [
            "a..b", "a.c", ".d", "e", "e.", "a.", "", "a.c.x", "x.y", "a...b",
        ] {
            assert_eq!(get(&value, dotted), by_split(dotted), "{dotted:?}");
            assert_eq!(get_in(&doc, dotted), by_split(dotted), "{dotted:?}");
        }
        assert_eq!(get(&value, "a..b"), Some(&json!(1)));
        assert_eq!(get(&value, ".d"), Some(&json!(3)));
    }

    #[test]
    fn set_builds_nested_objects_and_get_reads_them() {
        let mut doc = Doc::new();
        set(&mut doc, "source.geo.country_iso_code", "JP");
        set(&mut doc, "source.ip", "192.0.2.1");
        set(&mut doc, "event.kind", "event");
        assert_eq!(
            Value::Object(doc.clone()),
            json!({"source": {"geo": {"country_iso_code": "JP"}, "ip": "192.0.2.1"}, "event": {"kind": "event"}})
        );
        assert_eq!(get_in(&doc, "source.ip"), Some(&json!("192.0.2.1")));
        assert_eq!(get_in(&doc, "source.port"), None);
    }

    #[test]
    fn set_replaces_scalars_on_the_path() {
        let mut doc = Doc::new();
        set(&mut doc, "user", "alice");
        set(&mut doc, "user.name", "alice");
        assert_eq!(Value::Object(doc), json!({"user": {"name": "alice"}}));
    }

    #[test]
    fn set_opt_skips_empty_values() {
        let mut doc = Doc::new();
        set_opt(&mut doc, "a", Some(""));
        set_opt::<&str>(&mut doc, "b", None);
        set_opt(&mut doc, "c", Some(Value::Null));
        set_opt(&mut doc, "d", Some("x"));
        assert_eq!(Value::Object(doc), json!({"d": "x"}));
    }

    #[test]
    fn related_lists_have_no_duplicates() {
        let mut doc = Doc::new();
        add_related(&mut doc, "ip", "192.0.2.1");
        add_related(&mut doc, "ip", "192.0.2.1");
        add_related(&mut doc, "ip", "198.51.100.7");
        add_related(&mut doc, "user", "");
        assert_eq!(
            Value::Object(doc),
            json!({"related": {"ip": ["192.0.2.1", "198.51.100.7"]}})
        );
    }

    #[test]
    fn addresses_parse_as_the_standard_parser_parses_them() {
        for text in [
            "81.2.69.1",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..3.4",
            "1.2.3.4 ",
            "a.b.c.d",
            "",
            "::1",
            "2001:db8::7",
            "::ffff:10.0.0.1",
            "10.0.0.1/8",
            "1.2.3.04",
            "999.1.1.1",
        ] {
            assert_eq!(
                parse_ip(text),
                text.parse::<std::net::IpAddr>().ok(),
                "{text:?}"
            );
        }
    }
}
