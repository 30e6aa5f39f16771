//! Field tables: one line per field, its dotted name and its OpenSearch type. The one source
//! of truth for field types: index templates are built from them, the configured mapping of
//! user types converts values by them, and the tests check the documents against them.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// Keywords longer than this are kept in `_source` but not indexed: a term over Lucene's
/// 32 KiB limit would make OpenSearch refuse the whole document.
pub const KEYWORD_IGNORE_ABOVE: u32 = 1024;

/// The types a field table may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldType {
    Keyword,
    Text,
    Date,
    Ip,
    Long,
    Integer,
    Float,
    Double,
    Boolean,
    GeoPoint,
    /// A free-form object: every value inside is indexed as a keyword under its dotted path,
    /// and no inner shape ever conflicts with another.
    FlatObject,
}

impl FieldType {
    pub const ALL: [FieldType; 11] = [
        Self::Keyword,
        Self::Text,
        Self::Date,
        Self::Ip,
        Self::Long,
        Self::Integer,
        Self::Float,
        Self::Double,
        Self::Boolean,
        Self::GeoPoint,
        Self::FlatObject,
    ];

    /// The name OpenSearch gives the type (in mappings and in `_mapping` answers).
    pub fn name(self) -> &'static str {
        match self {
            Self::Keyword => "keyword",
            Self::Text => "text",
            Self::Date => "date",
            Self::Ip => "ip",
            Self::Long => "long",
            Self::Integer => "integer",
            Self::Float => "float",
            Self::Double => "double",
            Self::Boolean => "boolean",
            Self::GeoPoint => "geo_point",
            Self::FlatObject => "flat_object",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            Self::Long | Self::Integer | Self::Float | Self::Double
        )
    }

    /// The mapping of one field of this type.
    pub fn mapping(self) -> Value {
        match self {
            Self::Keyword => json!({"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}),
            other => json!({"type": other.name()}),
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A field table that cannot be used, named by file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct FieldTableError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

/// Where a field was declared, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Declared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Fields by dotted name, with the type each one has.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldTable {
    fields: BTreeMap<String, (FieldType, Declared)>,
}

impl FieldTable {
    /// Reads a table: `<dotted.name> <type>` per line; `#` starts a comment line.
    pub fn parse(file: &str, text: &str) -> Result<Self, FieldTableError> {
        let mut table = Self::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |reason: String| FieldTableError {
                file: file.to_owned(),
                line: n + 1,
                reason,
            };
            let mut words = line.split_whitespace();
            let (Some(name), Some(kind), None) = (words.next(), words.next(), words.next()) else {
                return Err(error(format!(
                    "`{line}` is not `<field name> <type>` (types: {})",
                    type_names()
                )));
            };
            let kind = FieldType::from_name(kind).ok_or_else(|| {
                error(format!(
                    "`{kind}` is not a field type (types: {})",
                    type_names()
                ))
            })?;
            table
                .insert(
                    name,
                    kind,
                    Declared {
                        file: file.to_owned(),
                        line: n + 1,
                    },
                )
                .map_err(error)?;
        }
        Ok(table)
    }

    /// Adds a field; refuses a name declared twice with two types, or a field that would sit
    /// inside another (a leaf cannot hold fields, except a flat object's own values).
    pub fn insert(&mut self, name: &str, kind: FieldType, at: Declared) -> Result<(), String> {
        if name.is_empty() || name.split('.').any(str::is_empty) {
            return Err(format!("`{name}` is not a dotted field name"));
        }
        if let Some((other, first)) = self.fields.get(name) {
            if *other != kind {
                return Err(format!(
                    "`{name}` is {kind} here but {other} at {first}: one field, one type"
                ));
            }
            return Ok(());
        }
        for (prefix, _) in parents(name) {
            if let Some((other, first)) = self.fields.get(prefix) {
                return Err(format!(
                    "`{name}` would sit inside `{prefix}`, a {other} field ({first})"
                ));
            }
        }
        let below = format!("{name}.");
        if let Some((child, (_, first))) = self
            .fields
            .range(below.clone()..)
            .next()
            .filter(|(k, _)| k.starts_with(&below))
        {
            return Err(format!(
                "`{name}` cannot be a {kind} field: `{child}` ({first}) is a field inside it"
            ));
        }
        self.fields.insert(name.to_owned(), (kind, at));
        Ok(())
    }

    /// Every field of `other` added to this table, with the same checks.
    pub fn merge(&mut self, other: &FieldTable) -> Result<(), String> {
        for (name, (kind, at)) in &other.fields {
            self.insert(name, *kind, at.clone())
                .map_err(|reason| format!("{at}: {reason}"))?;
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The declared fields, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, FieldType)> {
        self.fields.iter().map(|(k, (t, _))| (k.as_str(), *t))
    }

    /// The type of a declared field.
    pub fn get(&self, name: &str) -> Option<FieldType> {
        self.fields.get(name).map(|(t, _)| *t)
    }

    /// How a document value at `path` is indexed: its own type, the geo point it is part of
    /// (`lat`, `lon`), or the flat object it sits in.
    pub fn resolve<'p>(&self, path: &'p str) -> Option<Resolved<'p>> {
        if let Some(kind) = self.get(path) {
            return Some(Resolved::Field(kind));
        }
        parents(path).find_map(|(prefix, _)| match self.get(prefix) {
            Some(FieldType::FlatObject) => Some(Resolved::InFlatObject(&path[..prefix.len()])),
            Some(FieldType::GeoPoint) => Some(Resolved::Field(FieldType::GeoPoint)),
            _ => None,
        })
    }

    /// The `properties` of a mapping: dotted names become nested objects.
    pub fn properties(&self) -> Map<String, Value> {
        let mut root = Map::new();
        for (name, (kind, _)) in &self.fields {
            let mut node = &mut root;
            let mut parts = name.split('.').peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    node.insert(part.to_owned(), kind.mapping());
                    break;
                }
                let entry = node
                    .entry(part.to_owned())
                    .or_insert_with(|| json!({"properties": {}}));
                // `insert` keeps leaves and objects apart, so this is always an object.
                let Some(Value::Object(props)) = entry.get_mut("properties") else {
                    break;
                };
                node = props;
            }
        }
        root
    }
}

/// How a document value is indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved<'a> {
    Field(FieldType),
    /// Inside the flat object of this name.
    InFlatObject(&'a str),
}

/// The proper prefixes of a dotted name, longest last: `a.b.c` -> `a`, `a.b`.
fn parents(name: &str) -> impl Iterator<Item = (&str, usize)> {
    name.match_indices('.')
        .map(move |(at, _)| (&name[..at], at))
}

fn type_names() -> String {
    FieldType::ALL
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Result<FieldTable, FieldTableError> {
        FieldTable::parse("t.fields", text)
    }

    #[test]
    fn parses_names_types_and_comments() {
        let t =
            table("# comment\n\n@timestamp date\nsource.ip   ip\nrequestParameters flat_object\n")
                .expect("valid");
        assert_eq!(t.len(), 3);
        assert_eq!(t.get("source.ip"), Some(FieldType::Ip));
        assert_eq!(
            t.resolve("requestParameters.filter.a"),
            Some(Resolved::InFlatObject("requestParameters"))
        );
        assert_eq!(t.resolve("source.port"), None);
        assert_eq!(
            t.resolve("@timestamp"),
            Some(Resolved::Field(FieldType::Date))
        );
    }

    #[test]
    fn errors_name_file_line_and_reason() {
        let err = table("a keyword\nb string\n").expect_err("bad type");
        assert_eq!((err.file.as_str(), err.line), ("t.fields", 2));
        assert!(err.reason.contains("`string` is not a field type"), "{err}");
        let err = table("a keyword extra\n").expect_err("three words");
        assert!(err.to_string().starts_with("t.fields:1:"), "{err}");
        let err = table("a.b keyword\na.b ip\n").expect_err("two types");
        assert!(err.reason.contains("t.fields:1"), "{err}");
        let err = table("a keyword\na.b ip\n").expect_err("inside a leaf");
        assert!(err.reason.contains("inside `a`"), "{err}");
        let err = table("a.b ip\na flat_object\n").expect_err("leaf over fields");
        assert!(err.reason.contains("`a.b`"), "{err}");
        let err = table("a..b ip\n").expect_err("empty part");
        assert!(err.reason.contains("dotted"), "{err}");
        // The same declaration twice is harmless.
        assert!(table("a ip\na ip\n").is_ok());
    }

    #[test]
    fn properties_nest_dotted_names() {
        let t =
            table("source.ip ip\nsource.geo.location geo_point\nmessage text\nuser.name keyword\n")
                .expect("valid");
        assert_eq!(
            Value::Object(t.properties()),
            json!({
                "message": {"type": "text"},
                "source": {"properties": {
                    "geo": {"properties": {"location": {"type": "geo_point"}}},
                    "ip": {"type": "ip"}
                }},
                "user": {"properties": {
                    "name": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}
                }}
            })
        );
    }

    #[test]
    fn merging_keeps_the_checks() {
        let mut a = table("source.ip ip\n").expect("valid");
        let b = FieldTable::parse("b.fields", "source.ip keyword\n").expect("valid");
        let err = a.merge(&b).expect_err("conflict");
        assert!(
            err.contains("b.fields:1") && err.contains("t.fields:1"),
            "{err}"
        );
    }
}
