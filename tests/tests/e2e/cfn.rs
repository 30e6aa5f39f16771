//! Reading the CloudFormation templates of `stacksets/` as plain JSON values.
//!
//! The templates use the short intrinsic-function tags (`!Ref`, `!Sub`, `!GetAtt`, ...). They are
//! rewritten to the long form CloudFormation documents (`{"Ref": ...}`, `{"Fn::Sub": ...}`,
//! `{"Fn::GetAtt": [resource, attribute]}`), so the checks see one shape whichever form a
//! template author chose.

use serde_json::{Map, Value, json};
use std::path::PathBuf;

/// The templates the project ships, all of which the checks cover.
pub const TEMPLATES: [&str; 4] = [
    "central.yaml",
    "member.yaml",
    "org-trail.yaml",
    "member-sources.yaml",
];

/// The `stacksets/` folder of this repository.
pub fn stacksets_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("stacksets")
}

/// The text of one template.
pub fn template_text(file: &str) -> String {
    let path = stacksets_dir().join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read template {}: {e}", path.display()))
}

/// A parsed template with its file name (for messages).
#[derive(Clone, Debug)]
pub struct Template {
    pub file: String,
    pub doc: Value,
}

impl Template {
    /// Reads and parses `stacksets/<file>`; a template that does not parse fails the test.
    pub fn load(file: &str) -> Template {
        Template::parse(file, &template_text(file)).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn parse(file: &str, text: &str) -> Result<Template, String> {
        let yaml: serde_norway::Value =
            serde_norway::from_str(text).map_err(|e| format!("{file}: not valid YAML: {e}"))?;
        let doc = to_long_form(yaml).map_err(|e| format!("{file}: {e}"))?;
        if !doc.get("Resources").is_some_and(Value::is_object) {
            return Err(format!("{file}: no Resources section"));
        }
        Ok(Template {
            file: file.to_owned(),
            doc,
        })
    }

    /// Every resource as (logical id, resource), in template order.
    pub fn resources(&self) -> Vec<(&str, &Value)> {
        self.doc
            .get("Resources")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
            .unwrap_or_default()
    }

    pub fn resources_of_type(&self, resource_type: &str) -> Vec<(&str, &Value)> {
        self.resources()
            .into_iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(resource_type))
            .collect()
    }

    pub fn resource(&self, logical_id: &str) -> Option<&Value> {
        self.doc.get("Resources")?.get(logical_id)
    }

    pub fn resource_type(&self, logical_id: &str) -> Option<&str> {
        self.resource(logical_id)?.get("Type")?.as_str()
    }

    /// A copy with the value at a JSON pointer replaced (or removed when `value` is `None`),
    /// to prove that a check fails on a template that breaks its promise.
    pub fn mutated(&self, pointer: &str, value: Option<Value>) -> Template {
        let mut copy = self.clone();
        match value {
            Some(v) => {
                let slot = copy
                    .doc
                    .pointer_mut(pointer)
                    .unwrap_or_else(|| panic!("{}: nothing at {pointer}", self.file));
                *slot = v;
            }
            None => {
                let (parent, last) = pointer
                    .rsplit_once('/')
                    .unwrap_or_else(|| panic!("bad pointer {pointer}"));
                let parent = copy
                    .doc
                    .pointer_mut(parent)
                    .unwrap_or_else(|| panic!("{}: nothing at {parent}", self.file));
                match parent {
                    Value::Object(m) => {
                        m.remove(last)
                            .unwrap_or_else(|| panic!("{}: nothing at {pointer}", self.file));
                    }
                    Value::Array(a) => {
                        let i: usize = last.parse().unwrap_or_else(|_| panic!("bad index {last}"));
                        a.remove(i);
                    }
                    _ => panic!("{}: {parent} is neither object nor array", self.file),
                }
            }
        }
        copy
    }
}

/// Rewrites a YAML value with CloudFormation short tags into the long JSON form.
pub fn to_long_form(v: serde_norway::Value) -> Result<Value, String> {
    use serde_norway::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                json!(n.as_f64())
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(to_long_form)
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return Err(format!("mapping key {other:?} is not a scalar")),
                };
                out.insert(key, to_long_form(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = to_long_form(tagged.value)?;
            match name {
                "Ref" | "Condition" => json!({ name: inner }),
                "GetAtt" => match inner {
                    Value::String(s) => {
                        let (resource, attribute) = s
                            .split_once('.')
                            .ok_or_else(|| format!("!GetAtt {s} names no attribute"))?;
                        json!({ "Fn::GetAtt": [resource, attribute] })
                    }
                    other => json!({ "Fn::GetAtt": other }),
                },
                "Base64" | "Cidr" | "FindInMap" | "GetAZs" | "If" | "ImportValue" | "Join"
                | "Select" | "Split" | "Sub" | "Transform" | "And" | "Equals" | "Not" | "Or"
                | "ToJsonString" | "Length" => json!({ format!("Fn::{name}"): inner }),
                other => return Err(format!("unknown CloudFormation tag !{other}")),
            }
        }
    })
}

/// `{"Ref": id}` → `id`.
pub fn ref_target(v: &Value) -> Option<&str> {
    v.as_object().filter(|m| m.len() == 1)?.get("Ref")?.as_str()
}

/// `{"Fn::GetAtt": [id, attribute]}` → `(id, attribute)`.
pub fn get_att(v: &Value) -> Option<(&str, &str)> {
    let parts = v
        .as_object()
        .filter(|m| m.len() == 1)?
        .get("Fn::GetAtt")?
        .as_array()?;
    match parts.as_slice() {
        [Value::String(id), Value::String(attribute)] => Some((id, attribute)),
        _ => None,
    }
}

/// `{"Fn::Sub": "text"}` → `text` (the one-argument form only).
pub fn sub_text(v: &Value) -> Option<&str> {
    v.as_object()
        .filter(|m| m.len() == 1)?
        .get("Fn::Sub")?
        .as_str()
}

/// A string-or-list policy field (`Action`, `Resource`) as a list.
pub fn as_list(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(other) => vec![other],
    }
}

/// Every IAM policy statement anywhere in the template (role, bucket, key, queue, topic and
/// domain policies), as (where, statement). Statements chosen by `Fn::If` count in both branches.
pub fn policy_statements(t: &Template) -> Vec<(String, &Value)> {
    fn walk<'a>(path: String, v: &'a Value, out: &mut Vec<(String, &'a Value)>) {
        match v {
            Value::Object(m) => {
                if let Some(statements) = m.get("Statement") {
                    for (i, s) in as_list(Some(statements)).into_iter().enumerate() {
                        for (j, s) in statement_branches(s).into_iter().enumerate() {
                            out.push((format!("{path}/Statement/{i}.{j}"), s));
                        }
                    }
                }
                for (k, v) in m {
                    if k != "Statement" {
                        walk(format!("{path}/{k}"), v, out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(format!("{path}/{i}"), v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(t.file.clone(), &t.doc, &mut out);
    out
}

/// The statements a possibly conditional statement (`Fn::If`) can become.
fn statement_branches(s: &Value) -> Vec<&Value> {
    match s.get("Fn::If").and_then(Value::as_array).map(Vec::as_slice) {
        Some([_, a, b]) => [a, b]
            .into_iter()
            .filter(|v| ref_target(v) != Some("AWS::NoValue"))
            .flat_map(statement_branches)
            .collect(),
        _ => vec![s],
    }
}
