//! The alert document of a rule that matched: ECS (`event.kind: alert`, `rule.*`, `threat.*`
//! from the rule's ATT&CK tags), who and where from the matched document, and which document
//! it was (`alert.source.*`). Its id is a hash of the rule and the document's index and id, so a
//! replayed object never duplicates an alert; it goes to `alert-<YYYY-MM>` of the document's
//! time.

use super::RuleMatch;
use super::correlate::CorrelationAlert;
use crate::ecs::{self, Doc};
use crate::json_write;
use crate::pipeline::{Document, Source};
use serde_json::Value;

/// The alias (and name prefix) of the alert indices.
pub const ALERT_INDEX: &str = "alert";

/// `event.severity` of a Sigma level (the scale ECS uses for risk scores, 0 to 100).
pub fn severity(level: &str) -> u64 {
    match level {
        "informational" => 1,
        "low" => 21,
        "medium" => 47,
        "high" => 73,
        "critical" => 99,
        _ => 47,
    }
}

/// A field of the matched document carried onto its alert: a leaf, or an object with the
/// fields carried from it.
struct Carried {
    key: &'static str,
    inside: &'static [Carried],
}

const fn leaf(key: &'static str) -> Carried {
    Carried { key, inside: &[] }
}

/// Fields of the matched document an analyst wants on the alert itself (the alert writes
/// `event` itself, with [`CARRIED_EVENT`] of the document in it).
const CARRIED: &[Carried] = &[
    Carried {
        key: "cloud",
        inside: &[
            Carried {
                key: "account",
                inside: &[leaf("id")],
            },
            leaf("region"),
            Carried {
                key: "instance",
                inside: &[leaf("id")],
            },
        ],
    },
    Carried {
        key: "source",
        inside: &[
            leaf("ip"),
            Carried {
                key: "geo",
                inside: &[leaf("country_iso_code")],
            },
        ],
    },
    Carried {
        key: "user",
        inside: &[leaf("name"), leaf("id")],
    },
    Carried {
        key: "related",
        inside: &[leaf("ip"), leaf("user")],
    },
    Carried {
        key: "host",
        inside: &[leaf("hostname")],
    },
];
const CARRIED_EVENT: &[Carried] = &[leaf("action"), leaf("provider"), leaf("outcome")];

/// Writes a JSON object with keys in the order given, nested objects opened and closed by
/// the caller. Alerts are written straight to JSON: one per matched document of a large
/// object must cost little next to the document itself.
struct Writer {
    out: Vec<u8>,
    /// Per open object: whether no key was written yet.
    first: Vec<bool>,
}

impl Writer {
    fn new() -> Self {
        let mut w = Self {
            out: Vec::with_capacity(1024),
            first: Vec::with_capacity(4),
        };
        w.open();
        w
    }

    fn open(&mut self) {
        self.out.push(b'{');
        self.first.push(true);
    }

    fn close(&mut self) {
        self.out.push(b'}');
        self.first.pop();
    }

    fn key(&mut self, key: &str) {
        if let Some(first) = self.first.last_mut() {
            if !*first {
                self.out.push(b',');
            }
            *first = false;
        }
        // Keys are the loader's own names (and rules' group-by fields): plain ASCII is copied.
        if key
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        {
            self.out.push(b'"');
            self.out.extend_from_slice(key.as_bytes());
            self.out.extend_from_slice(b"\":");
        } else {
            json_write::write_str(&mut self.out, key);
            self.out.push(b':');
        }
    }

    fn value(&mut self, key: &str, value: &Value) {
        self.key(key);
        json_write::write_value(&mut self.out, value);
    }

    fn text(&mut self, key: &str, value: &str) {
        self.key(key);
        json_write::write_str(&mut self.out, value);
    }

    fn object(&mut self, key: &str) {
        self.key(key);
        self.open();
    }

    /// Writes the fields of `map` that `carried` names; objects with none of them are left
    /// out. Returns whether anything was written.
    fn carry(&mut self, map: &Doc, carried: &[Carried]) -> bool {
        let mut wrote = false;
        for c in carried {
            let Some(value) = map.get(c.key) else {
                continue;
            };
            if c.inside.is_empty() {
                self.value(c.key, value);
                wrote = true;
                continue;
            }
            let Value::Object(inner) = value else {
                continue;
            };
            let (len, first) = (self.out.len(), self.first.last().copied());
            self.object(c.key);
            if self.carry(inner, c.inside) {
                self.close();
                wrote = true;
            } else {
                self.first.pop();
                self.out.truncate(len);
                if let (Some(slot), Some(first)) = (self.first.last_mut(), first) {
                    *slot = first;
                }
            }
        }
        wrote
    }

    fn strings(&mut self, key: &str, items: &[String]) {
        self.key(key);
        self.out.push(b'[');
        for (n, item) in items.iter().enumerate() {
            if n > 0 {
                self.out.push(b',');
            }
            json_write::write_str(&mut self.out, item);
        }
        self.out.push(b']');
    }

    /// The rule that matched: `event.*` of an alert (with the [`CARRIED_EVENT`] fields of
    /// the document's `event`), `rule.*`, `tags`, `threat.*`.
    fn rule(&mut self, matched: &RuleMatch, ingested: &str, event: Option<&Doc>) {
        self.object("event");
        // The same for every alert: written as it reads.
        self.out.extend_from_slice(
            br#""kind":"alert","module":"sigma","dataset":"sigma.alert","severity":"#,
        );
        if let Some(first) = self.first.last_mut() {
            *first = false;
        }
        json_write::write_u64(&mut self.out, severity(&matched.level));
        self.text("ingested", ingested);
        if let Some(event) = event {
            self.carry(event, CARRIED_EVENT);
        }
        self.close();
        // The rest depends on the rule alone: written once per rule and thread, then copied.
        RULE_FIELDS.with_borrow_mut(|cache| {
            if cache.len() > 4096 {
                cache.clear();
            }
            self.out.push(b',');
            match cache.get(&matched.id) {
                Some(fragment) => self.out.extend_from_slice(fragment),
                None => {
                    let fragment = rule_fragment(matched);
                    self.out.extend_from_slice(&fragment);
                    cache.insert(matched.id.clone(), fragment);
                }
            }
        });
    }

    /// Ends the object without closing the ones still open (for a fragment).
    fn into_fragment(self) -> Vec<u8> {
        self.out
    }

    fn finish(mut self) -> Vec<u8> {
        while !self.first.is_empty() {
            self.close();
        }
        self.out
    }
}

thread_local! {
    /// `"rule":{..},"tags":[..],"threat":{..}` of each rule seen, by rule id.
    static RULE_FIELDS: std::cell::RefCell<std::collections::HashMap<String, Vec<u8>>> =
        std::cell::RefCell::default();
}

/// The fields of an alert that depend on its rule only, as a JSON fragment (keys and values,
/// no braces).
fn rule_fragment(matched: &RuleMatch) -> Vec<u8> {
    let mut w = Writer::new();
    w.object("rule");
    w.text("id", &matched.id);
    w.text("name", &matched.title);
    w.text("ruleset", "sigma");
    w.text("category", &matched.level);
    w.close();
    w.strings("tags", &matched.tags);
    let (tactics, techniques) = attack(&matched.tags);
    if !tactics.is_empty() || !techniques.is_empty() {
        w.object("threat");
        w.text("framework", "MITRE ATT&CK");
        if !tactics.is_empty() {
            w.object("tactic");
            w.strings("name", &tactics);
            w.close();
        }
        if !techniques.is_empty() {
            w.object("technique");
            w.strings("id", &techniques);
            w.close();
        }
        w.close();
    }
    let mut out = w.into_fragment();
    out.remove(0);
    out
}

/// The alert of `matched` on the document `index`/`id` with the fields `doc`.
pub fn alert_document(
    matched: &RuleMatch,
    index: &str,
    id: &str,
    log_type: &str,
    doc: &Doc,
    ingested: &str,
) -> Document {
    let mut w = Writer::new();
    let time = doc.get("@timestamp").and_then(Value::as_str);
    if let Some(time) = time {
        w.text("@timestamp", time);
    }
    w.carry(doc, CARRIED);
    let event = match doc.get("event") {
        Some(Value::Object(event)) => Some(event),
        _ => None,
    };
    w.rule(matched, ingested, event);
    w.object("alert");
    w.object("source");
    w.text("index", index);
    w.text("id", id);
    w.text("log_type", log_type);
    if let Some(key) = doc.get("@log_s3key").and_then(Value::as_str) {
        w.text("s3_key", key);
    }
    w.close();
    w.close();
    w.text("@log_type", "alerts");
    Document {
        index: alert_index(time),
        id: alert_id(&[&matched.id, index, id]),
        source: Source::Json(w.finish()),
    }
}

/// `alert-<YYYY-MM>` of an alert's time.
pub(crate) fn alert_index(time: Option<&str>) -> String {
    let month = time.and_then(|t| t.get(..7)).unwrap_or("0000-00");
    let mut index = String::with_capacity(ALERT_INDEX.len() + 8);
    index.push_str(ALERT_INDEX);
    index.push('-');
    index.push_str(month);
    index
}

/// The hash of `parts` joined by newlines, as 32 hex digits.
pub(crate) fn alert_id(parts: &[&str]) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for (n, part) in parts.iter().enumerate() {
        if n > 0 {
            hasher.update(b"\n");
        }
        hasher.update(part.as_bytes());
    }
    let hash = hasher.digest128();
    let mut out = String::with_capacity(32);
    for shift in (0..32).rev() {
        let digit = ((hash >> (shift * 4)) & 0xf) as u8;
        out.push(char::from(if digit < 10 {
            b'0' + digit
        } else {
            b'a' + digit - 10
        }));
    }
    out
}

/// The alert of a correlation that fired: the rule, the group it fired for (each group-by
/// field at its own path, so the alert is filtered like the documents), the count and window.
pub fn correlation_alert_document(fired: &CorrelationAlert, ingested: &str) -> Document {
    let mut w = Writer::new();
    w.text("@timestamp", &fired.time);
    w.rule(&fired.rule, ingested, None);
    // The group's fields, nested by their paths (two may share a parent object).
    let mut group = Doc::new();
    for (field, value) in &fired.group {
        ecs::set(&mut group, field, value.as_str());
    }
    for (key, value) in &group {
        // The alert's own objects keep their place; the group is under alert.correlation too.
        if !["event", "rule", "tags", "threat", "alert", "@log_type"].contains(&key.as_str()) {
            w.value(key, value);
        }
    }
    w.object("alert");
    w.object("correlation");
    w.text("type", &fired.correlation_type);
    w.value("value", &Value::from(fired.value));
    w.key("window_seconds");
    json_write::write_u64(&mut w.out, fired.window_seconds);
    let fields: Vec<String> = fired.group.iter().map(|(f, _)| f.clone()).collect();
    w.strings("group_by", &fields);
    let values: Vec<String> = fired.group.iter().map(|(_, v)| v.clone()).collect();
    w.strings("group", &values);
    w.close();
    w.object("source");
    w.text("log_type", &fired.log_type);
    w.close();
    w.close();
    w.text("@log_type", "alerts");
    let group: Vec<String> = fired
        .group
        .iter()
        .map(|(f, v)| format!("{f}={v}"))
        .collect();
    let mut parts: Vec<&str> = vec![&fired.rule.id];
    parts.extend(group.iter().map(String::as_str));
    parts.push(&fired.time);
    Document {
        index: alert_index(Some(&fired.time)),
        id: alert_id(&parts),
        source: Source::Json(w.finish()),
    }
}

/// ATT&CK tactics (`attack.defense-evasion` -> `defense-evasion`) and techniques
/// (`attack.t1562.008` -> `T1562.008`) of Sigma tags.
fn attack(tags: &[String]) -> (Vec<String>, Vec<String>) {
    let mut tactics = Vec::new();
    let mut techniques = Vec::new();
    for tag in tags {
        let Some(name) = tag.strip_prefix("attack.") else {
            continue;
        };
        // t1562.008 is a technique, g0016 a group and s0002 a software: a letter and digits.
        let mut chars = name.chars();
        let coded = chars.next().is_some() && chars.next().is_some_and(|c| c.is_ascii_digit());
        match (coded, name.starts_with('t')) {
            (true, true) => techniques.push(name.to_ascii_uppercase()),
            (true, false) => {}
            (false, _) => tactics.push(name.to_owned()),
        }
    }
    (tactics, techniques)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matched() -> RuleMatch {
        RuleMatch {
            id: "r-1".into(),
            title: "CloudTrail stopped".into(),
            level: "high".into(),
            tags: vec![
                "attack.defense-evasion".into(),
                "attack.t1562.008".into(),
                "cis".into(),
            ],
        }
    }

    #[test]
    fn ids_are_the_hash_of_the_parts_in_hex() {
        assert_eq!(
            alert_id(&["r-1", "log-x", "e1"]),
            format!("{:032x}", xxhash_rust::xxh3::xxh3_128(b"r-1\nlog-x\ne1"))
        );
    }

    #[test]
    fn alerts_carry_rule_threat_origin_and_a_stable_id() {
        let Value::Object(doc) = json!({
            "@timestamp": "2026-12-01T10:00:00.000Z", "@log_s3key": "AWSLogs/k",
            "cloud": {"account": {"id": "111122223333"}, "region": "eu-west-1"},
            "user": {"name": "alice"}, "source": {"ip": "203.0.113.10"},
            "eventName": "StopLogging"
        }) else {
            unreachable!()
        };
        let a = alert_document(
            &matched(),
            "log-aws-cloudtrail-2026-12",
            "e1",
            "cloudtrail",
            &doc,
            "2026-12-01T10:05:00.000Z",
        );
        assert_eq!(a.index, "alert-2026-12");
        let v = Value::Object(a.source.fields().into_owned());
        assert_eq!(v["event"]["kind"], json!("alert"));
        assert_eq!(v["event"]["severity"], json!(73));
        assert_eq!(v["rule"]["id"], json!("r-1"));
        assert_eq!(v["threat"]["tactic"]["name"], json!(["defense-evasion"]));
        assert_eq!(v["threat"]["technique"]["id"], json!(["T1562.008"]));
        assert_eq!(
            v["alert"]["source"],
            json!({"index": "log-aws-cloudtrail-2026-12", "id": "e1", "log_type": "cloudtrail", "s3_key": "AWSLogs/k"})
        );
        assert_eq!(
            (v["user"]["name"].clone(), v["source"]["ip"].clone()),
            (json!("alice"), json!("203.0.113.10"))
        );
        assert_eq!(v.get("eventName"), None);
        let again = alert_document(
            &matched(),
            "log-aws-cloudtrail-2026-12",
            "e1",
            "cloudtrail",
            &doc,
            "later",
        );
        assert_eq!(again.id, a.id);
        let other = alert_document(
            &matched(),
            "log-aws-cloudtrail-2026-12",
            "e2",
            "cloudtrail",
            &doc,
            "later",
        );
        assert_ne!(other.id, a.id);
    }
}
