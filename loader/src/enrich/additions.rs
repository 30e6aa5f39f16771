//! Objects the enrichers add without copying them into each document.
//!
//! A GeoIP answer or an account's context is the same for many documents. Copied into every
//! document's fields, each copy costs a dozen allocations and its JSON is written again; an
//! [`Additions`] list instead holds the shared object, whose JSON was written once, and
//! [`Additions::write`] splices it into the document's JSON at the place the key would have
//! in the fields, so the bytes are those of the copied document. When something reads the
//! fields (detection rules, a configured document id), [`Additions::copy_into`] makes them
//! fields after all.

use crate::ecs::Doc;
use crate::json_write::{write_map, write_str, write_value};
use serde_json::{Map, Value};
use std::sync::Arc;

/// An object as enrichers add it: its fields and its compact JSON.
#[derive(Debug, PartialEq)]
pub struct Shared {
    pub fields: Map<String, Value>,
    pub json: Box<[u8]>,
}

impl Shared {
    pub fn new(fields: Map<String, Value>) -> Arc<Self> {
        let mut json = Vec::new();
        write_map(&mut json, &fields);
        Arc::new(Self {
            fields,
            json: json.into_boxed_slice(),
        })
    }
}

/// One added object: `<parent>.<key>`, or `<key>` at the top of the document.
#[derive(Debug, Clone, PartialEq)]
struct Addition {
    parent: Option<&'static str>,
    key: &'static str,
    value: Arc<Shared>,
}

/// The objects added to one document. A key the document has already keeps its own value,
/// and an addition under a parent that is not an object of the document is left out: both
/// when written and when copied in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Additions(Vec<Addition>);

impl Additions {
    pub fn add(&mut self, parent: Option<&'static str>, key: &'static str, value: Arc<Shared>) {
        if !self.has(parent, key) {
            self.0.push(Addition { parent, key, value });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn has(&self, parent: Option<&str>, key: &str) -> bool {
        self.0.iter().any(|a| a.parent == parent && a.key == key)
    }

    /// Whether the field `path` (dotted) is in an added object.
    pub fn holds(&self, path: &str) -> bool {
        self.0.iter().any(|a| {
            let rest = match a.parent {
                Some(parent) => path.strip_prefix(parent).and_then(|r| r.strip_prefix('.')),
                None => Some(path),
            };
            rest.and_then(|r| r.strip_prefix(a.key))
                .is_some_and(|r| r.is_empty() || r.starts_with('.'))
        })
    }

    /// Whether reading the field `path` reads something added: a field in an added object, or
    /// an object that holds one.
    pub fn meets(&self, path: &str) -> bool {
        self.holds(path)
            || self.0.iter().any(|a| {
                let added = match a.parent {
                    Some(parent) => [parent, a.key],
                    None => [a.key, ""],
                };
                let mut parts = added.iter().filter(|p| !p.is_empty());
                // `path` is `parent` (or the key itself, held above).
                parts.next().is_some_and(|first| *first == path) && parts.next().is_some()
            })
    }

    /// Copies every addition into `doc`'s fields. Those under a parent go first: like
    /// [`Additions::write`], they only go into the document's own objects.
    pub fn copy_into(self, doc: &mut Doc) {
        let (nested, top): (Vec<_>, Vec<_>) = self.0.into_iter().partition(|a| a.parent.is_some());
        for addition in nested.into_iter().chain(top) {
            let object = match addition.parent {
                None => Some(&mut *doc),
                Some(parent) => match doc.get_mut(parent) {
                    Some(Value::Object(object)) => Some(object),
                    _ => None,
                },
            };
            if let Some(object) = object
                && !object.contains_key(addition.key)
            {
                object.insert(
                    addition.key.to_owned(),
                    Value::Object(addition.value.fields.clone()),
                );
            }
        }
    }

    /// Appends `doc`'s compact JSON with the additions in it: the bytes
    /// [`crate::json_write::write_map`] writes for `doc` after [`Additions::copy_into`].
    pub fn write(&self, doc: &Doc, out: &mut Vec<u8>) {
        let mut top: Vec<&Addition> = self.0.iter().filter(|a| a.parent.is_none()).collect();
        top.sort_unstable_by_key(|a| a.key);
        self.write_object(doc, &top, true, out);
    }

    /// `map` with `here` (sorted by key) merged in, in the map's key order; at the top, the
    /// objects the other additions go in are merged likewise.
    fn write_object(&self, map: &Doc, here: &[&Addition], top: bool, out: &mut Vec<u8>) {
        let mut pending = here.iter().filter(|a| !map.contains_key(a.key)).peekable();
        let mut first = true;
        let mut separate = |out: &mut Vec<u8>| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
        };
        let added = |out: &mut Vec<u8>, a: &Addition| {
            write_str(out, a.key);
            out.push(b':');
            out.extend_from_slice(&a.value.json);
        };
        out.push(b'{');
        for (key, value) in map {
            while let Some(a) = pending.next_if(|a| a.key < key.as_str()) {
                separate(out);
                added(out, a);
            }
            separate(out);
            write_str(out, key);
            out.push(b':');
            let inner: Vec<&Addition> = if top {
                self.0
                    .iter()
                    .filter(|a| a.parent == Some(key.as_str()))
                    .collect()
            } else {
                Vec::new()
            };
            match value {
                Value::Object(object) if !inner.is_empty() => {
                    let mut inner = inner;
                    inner.sort_unstable_by_key(|a| a.key);
                    self.write_object(object, &inner, false, out);
                }
                _ => write_value(out, value),
            }
        }
        for a in pending {
            separate(out);
            added(out, a);
        }
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shared(value: Value) -> Arc<Shared> {
        match value {
            Value::Object(fields) => Shared::new(fields),
            _ => panic!("an object"),
        }
    }

    fn doc(value: Value) -> Doc {
        serde_json::from_value(value).expect("an object")
    }

    /// Whatever the keys and the document, the spliced JSON is that of the copied fields.
    #[test]
    fn written_additions_are_the_copied_fields_byte_for_byte() {
        let geo =
            shared(json!({"country_iso_code": "JP", "location": {"lat": 35.7, "lon": 139.7}}));
        let asn = shared(json!({"number": 64500, "organization": {"name": "Net \"A\""}}));
        let org = shared(json!({"unit": {"path": "Workloads/Prod"}}));
        let docs = [
            json!({"source": {"ip": "81.2.69.1", "port": 443}, "event": {"kind": "event"}}),
            json!({"source": {"ip": "81.2.69.1", "as": {"number": 1}}, "aws": {"cloudtrail": {}}}),
            json!({"source": "not an object", "zzz": 1}),
            json!({"aaa": 1}),
            json!({}),
        ];
        for value in docs {
            let mut additions = Additions::default();
            additions.add(Some("source"), "geo", geo.clone());
            additions.add(Some("source"), "as", asn.clone());
            additions.add(
                None,
                "aws",
                shared(json!({"organization": org.fields.clone()})),
            );
            additions.add(Some("aws"), "organization", org.clone());
            let doc = doc(value);
            let mut written = Vec::new();
            additions.write(&doc, &mut written);
            let mut copied = doc.clone();
            additions.copy_into(&mut copied);
            assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(&crate::json_write::map_to_vec(&copied))
            );
        }
    }

    #[test]
    fn fields_in_added_objects_are_known() {
        let mut additions = Additions::default();
        additions.add(Some("source"), "geo", shared(json!({"city_name": "Tokyo"})));
        additions.add(None, "aws", shared(json!({"account": {}})));
        for (path, held) in [
            ("source.geo", true),
            ("source.geo.city_name", true),
            ("source.geography", false),
            ("source.ip", false),
            ("aws.account.tags.env", true),
            ("awsx", false),
            ("eventID", false),
        ] {
            assert_eq!(additions.holds(path), held, "{path}");
        }
        assert!(additions.meets("source"), "holds the added geo");
        assert!(additions.meets("source.geo.city_name"));
        assert!(!additions.meets("source.ip"));
        assert!(!additions.meets("destination"));
    }

    #[test]
    fn a_key_is_added_once_and_never_over_the_documents_own() {
        let mut additions = Additions::default();
        additions.add(Some("client"), "geo", shared(json!({"city_name": "Tokyo"})));
        additions.add(
            Some("client"),
            "geo",
            shared(json!({"city_name": "Sydney"})),
        );
        assert!(additions.has(Some("client"), "geo"));
        assert!(!additions.has(None, "geo"));
        let fresh = doc(json!({"client": {"ip": "81.2.69.1"}}));
        let mut written = Vec::new();
        additions.write(&fresh, &mut written);
        assert!(String::from_utf8_lossy(&written).contains("Tokyo"));
        let mut own = doc(json!({"client": {"geo": {"city_name": "Osaka"}}}));
        additions.copy_into(&mut own);
        assert_eq!(own["client"]["geo"]["city_name"], "Osaka");
    }
}
