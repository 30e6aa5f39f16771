//! An alert document as a notification: a subject a person reads in a mail client or a chat
//! channel, a body that is the alert itself (with a one-line summary first) for programs, and
//! message attributes a subscription filter policy can select on (`level`, `rule_id`,
//! `account`, `severity`).

use crate::rules::alert::severity;
use serde_json::{Map, Value};

/// One notification, ready for any publisher.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertMessage {
    /// The alert's Sigma level (`informational` .. `critical`).
    pub level: String,
    /// At most 100 printable ASCII characters, as SNS requires of an e-mail subject.
    pub subject: String,
    /// `{"summary": "...", "alert": {...}}`.
    pub body: String,
    /// (name, value, numeric?) message attributes.
    pub attributes: Vec<(&'static str, String, bool)>,
}

/// Why an alert document could not become a message (it is not one the loader wrote).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an alert document: {0}")]
pub struct NotAnAlert(String);

fn text<'a>(alert: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(alert, |v, key| v.get(key))
        .and_then(Value::as_str)
}

/// The message of an alert document's source (as the sink stored it).
pub fn alert_message(source: &[u8]) -> Result<AlertMessage, NotAnAlert> {
    let alert: Value =
        serde_json::from_slice(source).map_err(|e| NotAnAlert(format!("invalid JSON: {e}")))?;
    if !alert.is_object() {
        return Err(NotAnAlert("not a JSON object".into()));
    }
    let rule_id = text(&alert, &["rule", "id"]).ok_or_else(|| NotAnAlert("no rule.id".into()))?;
    let title = text(&alert, &["rule", "name"]).unwrap_or(rule_id);
    let level = text(&alert, &["rule", "category"]).unwrap_or("medium");
    let account = text(&alert, &["cloud", "account", "id"]);
    let region = text(&alert, &["cloud", "region"]);

    let mut subject = format!("[{level}] {title}");
    if let Some(account) = account {
        subject.push_str(&format!(" ({account})"));
    }
    let summary = summary(&alert, level, title, account, region);
    let mut body = Map::new();
    body.insert("summary".into(), Value::String(summary));
    body.insert("alert".into(), alert.clone());

    let mut attributes = vec![
        ("level", level.to_owned(), false),
        ("rule_id", rule_id.to_owned(), false),
        ("severity", severity(level).to_string(), true),
    ];
    if let Some(account) = account {
        attributes.push(("account", account.to_owned(), false));
    }
    Ok(AlertMessage {
        level: level.to_owned(),
        subject: subject_line(&subject),
        body: Value::Object(body).to_string(),
        attributes,
    })
}

/// "high: CloudTrail logging stopped: StopLogging by alice from 203.0.113.10 in
/// 111122223333/eu-west-1 at 2026-12-01T10:00:00Z".
fn summary(
    alert: &Value,
    level: &str,
    title: &str,
    account: Option<&str>,
    region: Option<&str>,
) -> String {
    let mut out = format!("{level}: {title}");
    if let Some(action) = text(alert, &["event", "action"]) {
        out.push_str(&format!(": {action}"));
    }
    if let Some(user) = text(alert, &["user", "name"]) {
        out.push_str(&format!(" by {user}"));
    }
    if let Some(ip) = text(alert, &["source", "ip"]) {
        out.push_str(&format!(" from {ip}"));
    }
    match (account, region) {
        (Some(a), Some(r)) => out.push_str(&format!(" in {a}/{r}")),
        (Some(a), None) => out.push_str(&format!(" in {a}")),
        _ => {}
    }
    if let Some(time) = text(alert, &["@timestamp"]) {
        out.push_str(&format!(" at {time}"));
    }
    out
}

/// Printable ASCII only, no line breaks, at most 100 characters (SNS refuses others).
fn subject_line(subject: &str) -> String {
    let mut out: String = subject
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(100)
        .collect();
    if subject.chars().count() > 100 {
        out.truncate(97);
        out.push_str("...");
    }
    out
}

/// Whether `level` is at or above `min` on the Sigma scale.
pub fn at_least(level: &str, min: &str) -> bool {
    severity(level) >= severity(min)
}

/// The Sigma levels, lowest first.
pub const LEVELS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert() -> Value {
        json!({
            "@timestamp": "2026-12-01T10:00:00.000Z",
            "cloud": {"account": {"id": "111122223333"}, "region": "eu-west-1"},
            "event": {"action": "StopLogging", "kind": "alert"},
            "user": {"name": "alice"}, "source": {"ip": "203.0.113.10"},
            "rule": {"id": "r-1", "name": "CloudTrail logging stopped", "category": "high"}
        })
    }

    #[test]
    fn a_message_says_what_who_where_and_carries_the_alert() {
        let m = alert_message(alert().to_string().as_bytes()).expect("message");
        assert_eq!(
            m.subject,
            "[high] CloudTrail logging stopped (111122223333)"
        );
        assert_eq!(m.level, "high");
        let body: Value = serde_json::from_str(&m.body).expect("json");
        assert_eq!(
            body["summary"],
            json!(
                "high: CloudTrail logging stopped: StopLogging by alice from 203.0.113.10 in 111122223333/eu-west-1 at 2026-12-01T10:00:00.000Z"
            )
        );
        assert_eq!(body["alert"], alert());
        assert!(m.attributes.contains(&("severity", "73".into(), true)));
        assert!(
            m.attributes
                .contains(&("account", "111122223333".into(), false))
        );
    }

    #[test]
    fn subjects_fit_sns() {
        let mut a = alert();
        a["rule"]["name"] = json!(format!("Ünïcode\nline {}", "x".repeat(200)));
        let m = alert_message(a.to_string().as_bytes()).expect("message");
        assert_eq!(m.subject.len(), 100);
        assert!(m.subject.ends_with("..."));
        assert!(m.subject.chars().all(|c| c.is_ascii_graphic() || c == ' '));
    }

    #[test]
    fn other_documents_are_refused_with_the_reason() {
        assert!(
            alert_message(b"{not json")
                .unwrap_err()
                .to_string()
                .contains("invalid JSON")
        );
        assert!(
            alert_message(br#"{"event":{}}"#)
                .unwrap_err()
                .to_string()
                .contains("rule.id")
        );
    }

    #[test]
    fn levels_compare_on_the_sigma_scale() {
        assert!(at_least("critical", "high"));
        assert!(at_least("high", "high"));
        assert!(!at_least("medium", "high"));
        assert!(at_least("low", "informational"));
    }
}
