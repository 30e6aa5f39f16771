//! Reading what a cluster or Dashboards answers: pure functions over status and body.

use crate::content::templates::hash_of;
use serde_json::Value;

/// The reason an OpenSearch or Dashboards error answer gives, in one line.
pub fn reason(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let detail = parsed.as_ref().and_then(|v| {
        let error = v.get("error")?;
        let cause = error
            .get("root_cause")
            .and_then(|c| c.get(0))
            .unwrap_or(error);
        match (cause.get("type"), cause.get("reason")) {
            (Some(Value::String(t)), Some(Value::String(r))) => Some(format!("{t}: {r}")),
            (_, Some(Value::String(r))) => Some(r.clone()),
            _ => match (error.as_str(), v.get("message").and_then(Value::as_str)) {
                (Some(e), Some(m)) => Some(format!("{e}: {m}")),
                (Some(e), None) => Some(e.to_owned()),
                _ => None,
            },
        }
    });
    let detail = detail.unwrap_or_else(|| {
        let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if one_line.chars().count() > 300 {
            one_line.chars().take(300).collect::<String>() + "..."
        } else {
            one_line
        }
    });
    if detail.is_empty() {
        format!("the server answered {status}")
    } else {
        format!("the server answered {status}: {detail}")
    }
}

/// The `_meta.content_hash` of a template in a `GET _component_template/<name>` or
/// `GET _index_template/<name>` answer.
pub fn template_hash<'a>(answer: &'a Value, name: &str) -> Option<&'a str> {
    let (list, inner) = if answer.get("component_templates").is_some() {
        ("component_templates", "component_template")
    } else {
        ("index_templates", "index_template")
    };
    answer
        .get(list)?
        .as_array()?
        .iter()
        .find(|t| t.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|t| hash_of(t.get(inner)?))
}

/// A monitor found by a search of the Alerting plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundMonitor {
    pub id: String,
    pub seq_no: u64,
    pub primary_term: u64,
    pub monitor: Value,
}

/// The monitor named `name` in the answer of `_plugins/_alerting/monitors/_search` (its source
/// is the monitor, or holds it under `monitor`, depending on the version).
pub fn monitor_named(answer: &Value, name: &str) -> Option<FoundMonitor> {
    answer["hits"]["hits"].as_array()?.iter().find_map(|hit| {
        let source = &hit["_source"];
        let monitor = if source.get("monitor").is_some() {
            &source["monitor"]
        } else {
            source
        };
        (monitor["name"].as_str() == Some(name)).then(|| FoundMonitor {
            id: hit["_id"].as_str().unwrap_or_default().to_owned(),
            seq_no: hit["_seq_no"].as_u64().unwrap_or_default(),
            primary_term: hit["_primary_term"].as_u64().unwrap_or(1),
            monitor: monitor.clone(),
        })
    })
}

/// Whether an error answer says the index searched does not exist.
pub fn is_missing_index(body: &[u8]) -> bool {
    String::from_utf8_lossy(body).contains("index_not_found_exception")
}

/// Whether every key of `wanted` is in `actual` with the same value (lists element by
/// element): a server adds fields of its own (ISM's `last_updated_time`, its retry defaults),
/// and only what was given is compared.
pub fn contains(actual: &Value, wanted: &Value) -> bool {
    match (actual, wanted) {
        (Value::Object(a), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| a.get(k).is_some_and(|av| contains(av, wv))),
        (Value::Array(a), Value::Array(w)) => {
            a.len() == w.len() && a.iter().zip(w).all(|(av, wv)| contains(av, wv))
        }
        // A one-element list given as its element (ISM answers `ism_template` as a list).
        (Value::Array(a), w @ Value::Object(_)) => a.len() == 1 && contains(&a[0], w),
        (a, w) => a == w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reasons_come_from_opensearch_and_dashboards_errors() {
        let os = br#"{"error":{"root_cause":[{"type":"illegal_argument_exception","reason":"unknown type [flat_object]"}],"type":"x","reason":"y"},"status":400}"#;
        assert_eq!(
            reason(400, os),
            "the server answered 400: illegal_argument_exception: unknown type [flat_object]"
        );
        let osd = br#"{"statusCode":400,"error":"Bad Request","message":"Request must contain a osd-xsrf header."}"#;
        assert_eq!(
            reason(400, osd),
            "the server answered 400: Bad Request: Request must contain a osd-xsrf header."
        );
        assert_eq!(
            reason(502, b"<html>\n bad   gateway</html>"),
            "the server answered 502: <html> bad gateway</html>"
        );
        assert_eq!(reason(500, b""), "the server answered 500");
        assert!(reason(500, "x".repeat(1000).as_bytes()).ends_with("..."));
    }

    #[test]
    fn template_hashes_are_read_from_either_answer() {
        let c = json!({"component_templates": [{"name": "a", "component_template": {"template": {}, "_meta": {"content_hash": "h1"}}}]});
        assert_eq!(template_hash(&c, "a"), Some("h1"));
        assert_eq!(template_hash(&c, "b"), None);
        let i = json!({"index_templates": [{"name": "t", "index_template": {"_meta": {"content_hash": "h2"}}}]});
        assert_eq!(template_hash(&i, "t"), Some("h2"));
        let unmanaged = json!({"index_templates": [{"name": "t", "index_template": {}}]});
        assert_eq!(template_hash(&unmanaged, "t"), None);
    }

    #[test]
    fn containment_ignores_what_the_server_adds() {
        let wanted = json!({"policy": {"description": "d", "states": [{"name": "hot", "actions": [{"delete": {}}]}],
            "ism_template": [{"index_patterns": ["a-*"], "priority": 1}]}});
        let actual = json!({"policy": {"policy_id": "p", "description": "d", "last_updated_time": 1,
            "states": [{"name": "hot", "actions": [{"retry": {"count": 3}, "delete": {}}]}],
            "ism_template": [{"index_patterns": ["a-*"], "priority": 1, "last_updated_time": 2}]}});
        assert!(contains(&actual, &wanted));
        let changed = json!({"policy": {"description": "other"}});
        assert!(!contains(&actual, &changed));
        // A list that lost or gained an element differs.
        assert!(!contains(&json!([1, 2]), &json!([1])));
        assert!(contains(&json!([{"a": 1, "b": 2}]), &json!({"a": 1})));
    }
}
