//! The local index's fields, and a document as those fields (a pure function over the JSON
//! document).
//!
//! Declared ECS and type fields (`loader/content/`) get a tantivy field of their own, named by
//! their dotted path and typed as the OpenSearch templates type them: keyword (exact, fast for
//! `--top`), text (`message`: words), date, IP (so `10.0.0.0/8` is a range), numbers, booleans.
//! Everything else (flat objects such as `requestParameters`, fields no table declares, values
//! that do not fit their declared type) goes into one JSON field, `_rest`, where every string
//! is an exact term under its dotted path. `_source` keeps the document as it was loaded, `_id`
//! its id. Nothing is scored, so no field keeps norms.

use crate::content::fields::{FieldTable, FieldType, Resolved};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, FieldType as TantivyType, INDEXED,
    IndexRecordOption, JsonObjectOptions, OwnedValue, STORED, Schema, TextFieldIndexing,
    TextOptions,
};
use tantivy::{DateTime, TantivyDocument};

pub const ID: &str = "_id";
pub const INDEX: &str = "_index";
pub const SOURCE: &str = "_source";
pub const REST: &str = "_rest";
pub const TIMESTAMP: &str = "@timestamp";

/// How a declared field is indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Keyword,
    Text,
    Date,
    Ip,
    Integer,
    Float,
    Boolean,
}

impl Kind {
    fn of(kind: FieldType) -> Option<Self> {
        Some(match kind {
            FieldType::Keyword => Self::Keyword,
            FieldType::Text => Self::Text,
            FieldType::Date => Self::Date,
            FieldType::Ip => Self::Ip,
            FieldType::Long | FieldType::Integer => Self::Integer,
            FieldType::Float | FieldType::Double => Self::Float,
            FieldType::Boolean => Self::Boolean,
            // Geo points stay in `_source`; flat objects' values go to `_rest`.
            FieldType::GeoPoint | FieldType::FlatObject => return None,
        })
    }
}

/// The fields of a loader index, by role and by dotted path.
#[derive(Debug, Clone)]
pub struct IndexSchema {
    pub schema: Schema,
    pub id: Field,
    pub index: Field,
    pub source: Field,
    pub rest: Field,
    pub timestamp: Field,
    declared: BTreeMap<String, (Field, Kind)>,
    /// Where values are flat objects or geo points (for [`IndexSchema::document`]).
    table: FieldTable,
}

/// Why a folder cannot be read as a loader index.
#[derive(Debug, thiserror::Error)]
#[error("not an index of this loader: {0}")]
pub struct ForeignSchema(String);

impl IndexSchema {
    /// A new index's fields, from the field tables of the configuration's types.
    pub fn build(table: &FieldTable) -> Self {
        let mut builder = Schema::builder();
        builder.add_text_field(ID, keyword_options().set_stored());
        builder.add_text_field(INDEX, keyword_options().set_stored().set_fast("raw"));
        builder.add_text_field(SOURCE, STORED);
        builder.add_json_field(REST, rest_options());
        builder.add_date_field(TIMESTAMP, date_options());
        for (name, kind) in table.iter() {
            if name == TIMESTAMP {
                continue;
            }
            match Kind::of(kind) {
                Some(Kind::Keyword) => {
                    builder.add_text_field(name, keyword_options().set_fast("raw"))
                }
                Some(Kind::Text) => builder.add_text_field(
                    name,
                    TextOptions::default().set_indexing_options(
                        TextFieldIndexing::default()
                            .set_tokenizer("default")
                            .set_index_option(IndexRecordOption::WithFreqsAndPositions)
                            .set_fieldnorms(false),
                    ),
                ),
                Some(Kind::Date) => builder.add_date_field(name, date_options()),
                Some(Kind::Ip) => builder.add_ip_addr_field(name, INDEXED | FAST),
                Some(Kind::Integer) => builder.add_i64_field(name, INDEXED | FAST),
                Some(Kind::Float) => builder.add_f64_field(name, INDEXED | FAST),
                Some(Kind::Boolean) => builder.add_bool_field(name, INDEXED | FAST),
                None => continue,
            };
        }
        Self::read(builder.build(), table.clone())
            .unwrap_or_else(|e| unreachable!("a schema built here reads back: {e}"))
    }

    /// The fields of an existing index; an index without them is not one of ours.
    pub fn read(schema: Schema, table: FieldTable) -> Result<Self, ForeignSchema> {
        let field = |name: &str| {
            schema
                .get_field(name)
                .map_err(|_| ForeignSchema(format!("it has no `{name}` field")))
        };
        let id = field(ID)?;
        let index = field(INDEX)?;
        let source = field(SOURCE)?;
        let rest = field(REST)?;
        let timestamp = field(TIMESTAMP)?;
        let mut declared = BTreeMap::new();
        for (field, entry) in schema.fields() {
            let name = entry.name();
            if name.starts_with('_') {
                continue;
            }
            let kind = match entry.field_type() {
                TantivyType::Str(options) => match options.get_indexing_options() {
                    Some(i) if i.tokenizer() == "raw" => Kind::Keyword,
                    Some(_) => Kind::Text,
                    None => continue,
                },
                TantivyType::Date(_) => Kind::Date,
                TantivyType::IpAddr(_) => Kind::Ip,
                TantivyType::I64(_) => Kind::Integer,
                TantivyType::F64(_) => Kind::Float,
                TantivyType::Bool(_) => Kind::Boolean,
                _ => continue,
            };
            declared.insert(name.to_owned(), (field, kind));
        }
        Ok(Self {
            schema,
            id,
            index,
            source,
            rest,
            timestamp,
            declared,
            table,
        })
    }

    /// The field of a declared dotted path.
    pub fn declared(&self, path: &str) -> Option<(Field, Kind)> {
        self.declared.get(path).copied()
    }

    /// Every declared field.
    pub fn declared_fields(&self) -> impl Iterator<Item = (&str, Field, Kind)> {
        self.declared
            .iter()
            .map(|(k, (f, kind))| (k.as_str(), *f, *kind))
    }

    /// Declared fields whose path starts with `prefix.` (for `_exists_` on an object).
    pub fn declared_below<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let below = format!("{prefix}.");
        self.declared
            .range(below.clone()..)
            .take_while(move |(k, _)| k.starts_with(&below))
            .map(|(k, _)| k.as_str())
    }

    /// A document as the index's fields, read from its JSON text (kept as `_source`). The
    /// text is walked once, without building a tree: strings without escapes are borrowed.
    pub fn document(
        &self,
        index: &str,
        id: &str,
        source: &str,
    ) -> Result<TantivyDocument, serde_json::Error> {
        let mut walk = Walk {
            schema: self,
            path: String::new(),
            out: TantivyDocument::new(),
            rest: BTreeMap::new(),
        };
        walk.out.add_text(self.id, id);
        walk.out.add_text(self.index, index);
        walk.out.add_text(self.source, source);
        let mut reader = serde_json::Deserializer::from_str(source);
        Node(&mut walk).deserialize(&mut reader)?;
        reader.end()?;
        let Walk { mut out, rest, .. } = walk;
        if !rest.is_empty() {
            out.add_object(self.rest, rest);
        }
        Ok(out)
    }

    /// Puts one value where its path says: its declared field when it fits the type, else
    /// `_rest` (geo points stay in `_source` only).
    fn leaf(
        &self,
        value: Leaf<'_>,
        path: &str,
        out: &mut TantivyDocument,
        rest: &mut BTreeMap<String, OwnedValue>,
    ) {
        let declared = if path == TIMESTAMP {
            Some((self.timestamp, Kind::Date))
        } else {
            self.declared(path)
        };
        if let Some((field, kind)) = declared
            && add_typed(out, field, kind, &value)
        {
            return;
        }
        if matches!(
            self.table.resolve(path),
            Some(Resolved::Field(FieldType::GeoPoint))
        ) {
            return;
        }
        let owned = match value {
            Leaf::Str(s) => OwnedValue::Str(s.into_owned()),
            Leaf::Bool(b) => OwnedValue::Bool(b),
            Leaf::I64(i) => OwnedValue::I64(i),
            Leaf::U64(u) => OwnedValue::U64(u),
            Leaf::F64(f) => OwnedValue::F64(f),
        };
        match rest.get_mut(path) {
            Some(OwnedValue::Array(items)) => items.push(owned),
            Some(existing) => {
                let first = std::mem::replace(existing, OwnedValue::Null);
                *existing = OwnedValue::Array(vec![first, owned]);
            }
            None => {
                rest.insert(path.to_owned(), owned);
            }
        }
    }
}

/// A scalar of the document being walked.
enum Leaf<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
}

impl Leaf<'_> {
    /// The value as an exact term (numbers as written, booleans as `true`/`false`).
    fn exact_text(&self) -> String {
        match self {
            Leaf::Str(s) => s.to_string(),
            Leaf::Bool(b) => b.to_string(),
            Leaf::I64(i) => i.to_string(),
            Leaf::U64(u) => u.to_string(),
            Leaf::F64(f) => {
                serde_json::Number::from_f64(*f).map_or_else(|| f.to_string(), |n| n.to_string())
            }
        }
    }

    /// A number, also from its text (`"443"`), as OpenSearch coerces one.
    fn number(&self) -> Option<serde_json::Number> {
        match self {
            Leaf::I64(i) => Some((*i).into()),
            Leaf::U64(u) => Some((*u).into()),
            Leaf::F64(f) => serde_json::Number::from_f64(*f),
            Leaf::Str(s) => serde_json::from_str::<serde_json::Number>(s.trim()).ok(),
            Leaf::Bool(_) => None,
        }
    }

    /// A date: RFC 3339 text (as the documents write it) or epoch milliseconds.
    fn time(&self) -> Option<DateTime> {
        match self {
            Leaf::Str(s) => chrono::DateTime::parse_from_rfc3339(s.trim())
                .ok()
                .and_then(|t| t.timestamp_nanos_opt())
                .map(DateTime::from_timestamp_nanos),
            Leaf::I64(i) => Some(DateTime::from_timestamp_millis(*i)),
            Leaf::U64(u) => i64::try_from(*u).ok().map(DateTime::from_timestamp_millis),
            _ => None,
        }
    }
}

/// The state of one document's walk.
struct Walk<'s> {
    schema: &'s IndexSchema,
    /// The dotted path of the value being read.
    path: String,
    out: TantivyDocument,
    rest: BTreeMap<String, OwnedValue>,
}

impl Walk<'_> {
    fn leaf(&mut self, value: Leaf<'_>) {
        self.schema
            .leaf(value, &self.path, &mut self.out, &mut self.rest);
    }
}

/// One JSON value at the walk's current path.
struct Node<'w, 's>(&'w mut Walk<'s>);

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, reader: D) -> Result<(), D::Error> {
        reader.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.0.leaf(Leaf::Bool(v));
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.0.leaf(Leaf::I64(v));
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.0.leaf(Leaf::U64(v));
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.0.leaf(Leaf::F64(v));
        Ok(())
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.0.leaf(Leaf::Str(Cow::Borrowed(v)));
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.leaf(Leaf::Str(Cow::Owned(v.to_owned())));
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        while items.next_element_seed(Node(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        let len = self.0.path.len();
        while entries.next_key_seed(Key(&mut self.0.path))?.is_some() {
            entries.next_value_seed(Node(&mut *self.0))?;
            self.0.path.truncate(len);
        }
        Ok(())
    }
}

/// A key of an object: appended to the path (the caller cuts it off after the value).
struct Key<'p>(&'p mut String);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, reader: D) -> Result<(), D::Error> {
        reader.deserialize_str(self)
    }
}

impl Visitor<'_> for Key<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<(), E> {
        if !self.0.is_empty() {
            self.0.push('.');
        }
        self.0.push_str(key);
        Ok(())
    }
}

/// Adds `value` to a typed field; `false` when it does not fit the type (it then goes to
/// `_rest`, where it is still found as text).
fn add_typed(out: &mut TantivyDocument, field: Field, kind: Kind, value: &Leaf<'_>) -> bool {
    match (kind, value) {
        (Kind::Keyword, _) => out.add_text(field, value.exact_text()),
        (Kind::Text, Leaf::Str(s)) => out.add_text(field, s),
        (Kind::Date, _) => match value.time() {
            Some(t) => out.add_date(field, t),
            None => return false,
        },
        (Kind::Ip, Leaf::Str(s)) => match parse_ip(s) {
            Some(ip) => out.add_ip_addr(field, ip),
            None => return false,
        },
        (Kind::Integer, _) => match value.number().and_then(|n| n.as_i64()) {
            Some(i) => out.add_i64(field, i),
            None => return false,
        },
        (Kind::Float, _) => match value.number().and_then(|n| n.as_f64()) {
            Some(f) => out.add_f64(field, f),
            None => return false,
        },
        (Kind::Boolean, Leaf::Bool(b)) => out.add_bool(field, *b),
        (Kind::Boolean, Leaf::Str(s)) if s == "true" || s == "false" => {
            out.add_bool(field, s == "true")
        }
        _ => return false,
    }
    true
}

/// An address as tantivy keeps every one: IPv6, IPv4 mapped.
pub fn parse_ip(text: &str) -> Option<Ipv6Addr> {
    match text.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => Some(v6),
    }
}

/// An exact term, without norms (nothing is scored).
fn keyword_options() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    )
}

fn date_options() -> DateOptions {
    DateOptions::from(INDEXED)
        .set_fast()
        .set_precision(DateTimePrecision::Milliseconds)
}

fn rest_options() -> JsonObjectOptions {
    JsonObjectOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("raw")
                .set_index_option(IndexRecordOption::Basic),
        )
        .set_expand_dots_enabled()
        .set_fast("raw")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> FieldTable {
        FieldTable::parse(
            "t.fields",
            "source.ip ip\nsource.port long\nmessage text\nevent.action keyword\nrequestParameters flat_object\nsource.geo.location geo_point\nevent.outcome keyword\n",
        )
        .expect("table")
    }

    #[test]
    fn declared_fields_get_their_type_and_the_rest_goes_to_rest() {
        let schema = IndexSchema::build(&table());
        let doc = json!({
            "@timestamp": "2026-03-04T12:05:31.000Z",
            "source": {"ip": "203.0.113.5", "port": "443", "geo": {"location": {"lat": 1.5, "lon": 2.5}}},
            "message": "Failed password",
            "event": {"action": ["StopLogging", "x"], "outcome": 5},
            "requestParameters": {"bucketName": "logs", "n": 3},
            "tags": ["a"]
        });
        let d = schema
            .document("log-x", "id-1", &doc.to_string())
            .expect("a JSON document");
        let values = |field: Field| -> Vec<String> {
            d.get_all(field)
                .map(|v| format!("{:?}", OwnedValue::from(v)))
                .collect()
        };
        let (ip, kind) = schema.declared("source.ip").expect("ip");
        assert_eq!(kind, Kind::Ip);
        assert_eq!(values(ip).len(), 1);
        let (port, _) = schema.declared("source.port").expect("port");
        assert_eq!(values(port), ["I64(443)"]);
        let (action, _) = schema.declared("event.action").expect("action");
        assert_eq!(values(action).len(), 2);
        let (outcome, _) = schema.declared("event.outcome").expect("outcome");
        assert_eq!(values(outcome), ["Str(\"5\")"]);
        assert_eq!(values(schema.timestamp).len(), 1);
        let rest = values(schema.rest);
        assert_eq!(rest.len(), 1);
        assert!(rest[0].contains("requestParameters.bucketName"), "{rest:?}");
        assert!(rest[0].contains("tags"), "{rest:?}");
        assert!(!rest[0].contains("lat"), "{rest:?}");
        assert!(schema.declared("requestParameters").is_none());
    }

    #[test]
    fn an_index_of_other_fields_is_refused_and_ours_reads_back() {
        let other = Schema::builder().build();
        assert!(IndexSchema::read(other, table()).is_err());
        let ours = IndexSchema::build(&table());
        let again = IndexSchema::read(ours.schema.clone(), FieldTable::default()).expect("ours");
        assert_eq!(again.declared("message").map(|(_, k)| k), Some(Kind::Text));
        assert_eq!(
            again.declared("event.action").map(|(_, k)| k),
            Some(Kind::Keyword)
        );
        assert_eq!(
            again.declared("source.port").map(|(_, k)| k),
            Some(Kind::Integer)
        );
    }
}
