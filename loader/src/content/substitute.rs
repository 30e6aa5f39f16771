//! `${name}` placeholders in the JSON content files: a string that is one placeholder becomes
//! the value itself (a number stays a number); a placeholder inside a longer string is replaced
//! by the value's text.

use serde_json::Value;
use std::collections::BTreeMap;

/// `template` with every placeholder replaced; the names of placeholders without a value are
/// returned as the error.
pub fn substitute(template: &Value, values: &BTreeMap<&str, Value>) -> Result<Value, String> {
    let mut missing = Vec::new();
    let out = walk(template, values, &mut missing);
    if missing.is_empty() {
        Ok(out)
    } else {
        missing.sort();
        missing.dedup();
        Err(format!(
            "no value for the placeholder(s) {}",
            missing
                .iter()
                .map(|m| format!("${{{m}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

fn walk(value: &Value, values: &BTreeMap<&str, Value>, missing: &mut Vec<String>) -> Value {
    match value {
        Value::String(s) => string(s, values, missing),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| walk(v, values, missing)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), walk(v, values, missing)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn string(s: &str, values: &BTreeMap<&str, Value>, missing: &mut Vec<String>) -> Value {
    if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
        && !name.contains('}')
    {
        return match values.get(name) {
            Some(v) => v.clone(),
            None => {
                missing.push(name.to_owned());
                Value::String(s.to_owned())
            }
        };
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Value::String(out);
        };
        let name = &after[..end];
        match values.get(name) {
            Some(Value::String(text)) => out.push_str(text),
            Some(other) => out.push_str(&other.to_string()),
            None => {
                missing.push(name.to_owned());
                out.push_str(&rest[start..start + 3 + end]);
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Value::String(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_placeholders_keep_their_type_and_inner_ones_become_text() {
        let values = BTreeMap::from([("n", json!(3)), ("alias", json!("log-x"))]);
        let out = substitute(
            &json!({"a": "${n}", "b": ["${alias}-*"], "c": "keep ${alias} for ${n} days", "d": true}),
            &values,
        )
        .expect("all known");
        assert_eq!(
            out,
            json!({"a": 3, "b": ["log-x-*"], "c": "keep log-x for 3 days", "d": true})
        );
    }

    #[test]
    fn unknown_placeholders_are_named() {
        let err = substitute(&json!({"a": "${x}", "b": "y ${z} ${x}"}), &BTreeMap::new())
            .expect_err("unknown");
        assert_eq!(err, "no value for the placeholder(s) ${x}, ${z}");
        // An unclosed one is left as text.
        assert_eq!(
            substitute(&json!("a ${b"), &BTreeMap::new()),
            Ok(json!("a ${b"))
        );
    }
}
