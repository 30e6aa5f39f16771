//! Values too long for a flat object. OpenSearch indexes every value inside a `flat_object`
//! field as one term (with its path), and Lucene refuses a term over 32,766 bytes: the whole
//! document would be refused. A key policy in CloudTrail `requestParameters` (up to 32 KiB) or
//! a stack trace inside an application's JSON log line can be that long. Such a value is cut
//! here, the document says so in `tags`, and the original stays in its object in S3
//! (`@log_s3key`).

use crate::ecs::Doc;
use serde_json::Value;

/// Longest string kept whole inside a flat object: the term is this plus its dotted path.
pub const FLAT_VALUE_MAX: usize = 30_000;

/// The tag of a document with a cut value.
pub const TRUNCATED_TAG: &str = "_flat_object_value_truncated";

/// Cuts every string longer than [`FLAT_VALUE_MAX`] bytes found under the flat objects at
/// `paths` (dotted; lists on the way are followed); returns the paths of the values cut.
pub fn cut_long_flat_values(doc: &mut Doc, paths: &[String]) -> Vec<String> {
    let mut cut = Vec::new();
    for path in paths {
        let (first, rest) = crate::ecs::first_name(path);
        if let Some(value) = doc.get_mut(first) {
            descend(value, rest, path, &mut cut);
        }
    }
    cut
}

/// Walks down to the flat object at `rest` below `value`.
fn descend(value: &mut Value, rest: Option<&str>, path: &str, cut: &mut Vec<String>) {
    match (value, rest) {
        (Value::Array(items), _) => {
            for item in items {
                descend(item, rest, path, cut);
            }
        }
        (value, None) => cut_strings(value, path, &mut Vec::new(), cut),
        (Value::Object(map), Some(rest)) => {
            let (head, tail) = crate::ecs::first_name(rest);
            if let Some(inner) = map.get_mut(head) {
                descend(inner, tail, path, cut);
            }
        }
        _ => {}
    }
}

/// Cuts long strings below `value`; `trail` holds the keys from the flat object down, and a
/// path is only written out for a value that is cut (the walk itself allocates nothing).
fn cut_strings<'a>(
    value: &'a mut Value,
    root: &str,
    trail: &mut Vec<&'a str>,
    cut: &mut Vec<String>,
) {
    match value {
        Value::String(s) if s.len() > FLAT_VALUE_MAX => {
            let original = s.len();
            let mut end = FLAT_VALUE_MAX;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push_str(&format!(" [cut: {original} bytes]"));
            let mut path = root.to_owned();
            for key in trail.iter() {
                path.push('.');
                path.push_str(key);
            }
            cut.push(path);
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| cut_strings(v, root, trail, cut)),
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                trail.push(key);
                cut_strings(v, root, trail, cut);
                trail.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(value: Value) -> Doc {
        match value {
            Value::Object(map) => map,
            _ => Doc::new(),
        }
    }

    #[test]
    fn long_values_inside_flat_objects_are_cut_and_named() {
        let long = "é".repeat(20_000); // 40,000 bytes
        let mut d = doc(json!({
            "requestParameters": {"policy": long, "name": "short"},
            "Resources": [{"Details": {"a": {"b": [long.clone()]}}}, {"Id": "x"}],
            "message": long.clone(),
        }));
        let cut = cut_long_flat_values(
            &mut d,
            &[
                "requestParameters".into(),
                "Resources.Details".into(),
                "json".into(),
            ],
        );
        assert_eq!(cut, ["requestParameters.policy", "Resources.Details.a.b"]);
        let policy = d["requestParameters"]["policy"].as_str().expect("string");
        assert!(policy.len() <= FLAT_VALUE_MAX + 30, "{}", policy.len());
        assert!(policy.ends_with(" [cut: 40000 bytes]"));
        assert!(policy.starts_with("éé"));
        assert_eq!(d["requestParameters"]["name"], json!("short"));
        // Outside the flat objects nothing changes.
        assert_eq!(d["message"].as_str().map(str::len), Some(40_000));
    }

    #[test]
    fn documents_without_long_values_are_left_alone() {
        let original = json!({"requestParameters": {"a": "b", "n": 1, "l": [1, 2]}});
        let mut d = doc(original.clone());
        assert!(cut_long_flat_values(&mut d, &["requestParameters".into()]).is_empty());
        assert_eq!(Value::Object(d), original);
    }
}
