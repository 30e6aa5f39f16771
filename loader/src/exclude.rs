//! Exclusion rules of the es-loader's `exclude_log_patterns.csv`
//! (`log_type,field,pattern,pattern_type,comment`): a record of `log_type` whose ORIGINAL field
//! `field` (dots for nesting) equals `pattern` (`text`) or fully matches it (`regex`) is not
//! loaded, and is counted under its rule.
//!
//! Parsing takes the file's text and a name for messages, so the CLI (a local path) and the
//! Lambda side (an object fetched from `s3://...`) share it.

use crate::config::Config;
use regex::Regex;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ExclusionError {
    #[error("{source_name}: {reason}")]
    File { source_name: String, reason: String },
    #[error("{source_name}:{line}: {reason}")]
    Row {
        source_name: String,
        line: u64,
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternType {
    /// Exact match of the whole value.
    Text,
    /// The regex must match the whole value.
    Regex,
}

#[derive(Debug, Clone)]
enum Matcher {
    Text(String),
    Regex(Regex),
}

/// One row of the file.
#[derive(Debug, Clone)]
pub struct Rule {
    pub log_type: String,
    pub field: String,
    pub pattern: String,
    pub pattern_type: PatternType,
    pub comment: String,
    /// `file:line log_type field=pattern (type)`: names the rule in counts and messages.
    pub label: String,
    path: Vec<String>,
    matcher: Matcher,
}

impl Rule {
    /// Whether the original record has the field with a matching value. A list matches when
    /// one of its items does, also on the way (`findings.Id` looks into every finding).
    pub fn matches(&self, record: &Value) -> bool {
        self.matches_at(record, &self.path)
    }

    fn matches_at(&self, value: &Value, path: &[String]) -> bool {
        match (value, path.split_first()) {
            (Value::Array(items), _) => items.iter().any(|v| self.matches_at(v, path)),
            (Value::Object(map), Some((first, rest))) => {
                map.get(first).is_some_and(|v| self.matches_at(v, rest))
            }
            (v, None) => self.matches_scalar(v),
            _ => false,
        }
    }

    /// [`Rule::matches`] for a flat record of text fields (a text object whose header names
    /// its fields), read through `field` (`None` = absent): only a one-part field name can match.
    pub fn matches_flat<'v>(&self, field: &dyn Fn(&str) -> Option<&'v str>) -> bool {
        match self.path.as_slice() {
            [name] => field(name).is_some_and(|v| self.matches_text(v)),
            _ => false,
        }
    }

    fn matches_scalar(&self, value: &Value) -> bool {
        let owned;
        let text = match value {
            Value::String(s) => s.as_str(),
            Value::Number(n) => {
                owned = n.to_string();
                owned.as_str()
            }
            Value::Bool(b) => {
                if *b {
                    "true"
                } else {
                    "false"
                }
            }
            _ => return false,
        };
        self.matches_text(text)
    }

    fn matches_text(&self, text: &str) -> bool {
        match &self.matcher {
            Matcher::Text(t) => t == text,
            Matcher::Regex(re) => re.is_match(text),
        }
    }
}

/// Every rule, grouped by log type.
#[derive(Debug, Clone, Default)]
pub struct Exclusions {
    by_type: BTreeMap<String, Vec<Rule>>,
}

const COLUMNS: [&str; 4] = ["log_type", "field", "pattern", "pattern_type"];

impl Exclusions {
    /// Parses the CSV text; `source_name` (a path or `s3://bucket/key`) names it in errors. A
    /// malformed row is an error naming its line: a silently ignored rule would load what the
    /// team meant to keep out.
    pub fn parse(source_name: &str, text: &str) -> Result<Self, ExclusionError> {
        let file_err = |reason: String| ExclusionError::File {
            source_name: source_name.to_owned(),
            reason,
        };
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = csv
            .headers()
            .map_err(|e| file_err(format!("cannot read the header row: {e}")))?
            .clone();
        let mut columns = [0usize; 4];
        for (slot, name) in columns.iter_mut().zip(COLUMNS) {
            *slot = headers.iter().position(|h| h == name).ok_or_else(|| {
                file_err(format!(
                    "the header row must name log_type,field,pattern,pattern_type,comment; `{name}` is missing"
                ))
            })?;
        }
        let comment_col = headers.iter().position(|h| h == "comment");
        let mut by_type: BTreeMap<String, Vec<Rule>> = BTreeMap::new();
        let mut row = csv::StringRecord::new();
        loop {
            let line = csv.position().line();
            match csv.read_record(&mut row) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    return Err(ExclusionError::Row {
                        source_name: source_name.to_owned(),
                        line: e.position().map_or(line, |p| p.line()),
                        reason: e.to_string(),
                    });
                }
            }
            // The record's position is where reading started, before any blank lines.
            let line = row.position().map_or(line, |p| {
                let skipped = text
                    .as_bytes()
                    .get(usize::try_from(p.byte()).unwrap_or(usize::MAX)..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|b| matches!(b, b'\n' | b'\r'))
                    .filter(|b| **b == b'\n')
                    .count();
                p.line() + skipped as u64
            });
            let row_err = |reason: String| ExclusionError::Row {
                source_name: source_name.to_owned(),
                line,
                reason,
            };
            if row.iter().all(str::is_empty) {
                continue;
            }
            if row.len() < headers.len() {
                return Err(row_err(format!(
                    "{} columns where the header names {}",
                    row.len(),
                    headers.len()
                )));
            }
            let get = |i: usize| row.get(i).unwrap_or_default().to_owned();
            let [log_type, field, pattern, pattern_type] = columns.map(get);
            for (name, value) in [("log_type", &log_type), ("field", &field)] {
                if value.is_empty() {
                    return Err(row_err(format!("`{name}` is empty")));
                }
            }
            let (pattern_type, matcher) = match pattern_type.to_lowercase().as_str() {
                "text" => (PatternType::Text, Matcher::Text(pattern.clone())),
                "regex" => {
                    let re = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                        row_err(format!("invalid regular expression `{pattern}`: {e}"))
                    })?;
                    (PatternType::Regex, Matcher::Regex(re))
                }
                other => {
                    return Err(row_err(format!(
                        "pattern_type `{other}` is not text or regex"
                    )));
                }
            };
            let kind = match pattern_type {
                PatternType::Text => "text",
                PatternType::Regex => "regex",
            };
            let rule = Rule {
                label: format!("{source_name}:{line} {log_type} {field}={pattern} ({kind})"),
                path: field.split('.').map(str::to_owned).collect(),
                log_type: log_type.clone(),
                field,
                pattern,
                pattern_type,
                comment: comment_col.map(get).unwrap_or_default(),
                matcher,
            };
            by_type.entry(log_type).or_default().push(rule);
        }
        Ok(Self { by_type })
    }

    /// The rules of one type (empty when it has none).
    pub fn for_type(&self, log_type: &str) -> &[Rule] {
        self.by_type.get(log_type).map_or(&[], Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.by_type.is_empty()
    }

    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.by_type.values().flatten()
    }

    /// Rules naming a type the configuration does not define: they could never apply.
    pub fn warnings(&self, config: &Config) -> Vec<String> {
        self.rules()
            .filter(|r| config.get(&r.log_type).is_none())
            .map(|r| {
                format!(
                    "{}: log type `{}` is not defined, the rule never applies",
                    r.label, r.log_type
                )
            })
            .collect()
    }
}

/// The first rule that excludes `record`.
pub fn first_match<'r>(rules: &'r [Rule], record: &Value) -> Option<&'r Rule> {
    rules.iter().find(|r| r.matches(record))
}

/// [`first_match`] for a flat record of text fields (see [`Rule::matches_flat`]).
pub fn first_match_flat<'r, 'v>(
    rules: &'r [Rule],
    field: &dyn Fn(&str) -> Option<&'v str>,
) -> Option<&'r Rule> {
    rules.iter().find(|r| r.matches_flat(field))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CSV: &str = "log_type,field,pattern,pattern_type,comment\n\
vpcflowlogs,srcaddr,192.0.2.10,text,sample1\n\
vpcflowlogs,dstaddr,192\\.0\\.2\\.10[0-9],regex,sample2\n\
cloudtrail,userIdentity.invokedBy,.*\\.amazonaws\\.com,regex,sample3\n";

    #[test]
    fn text_is_exact_and_regex_is_a_full_match() {
        let ex = Exclusions::parse("exclude_log_patterns.csv", CSV).expect("valid");
        let vpc = ex.for_type("vpcflowlogs");
        assert_eq!(vpc.len(), 2);
        assert!(vpc[0].matches(&json!({"srcaddr": "192.0.2.10"})));
        assert!(!vpc[0].matches(&json!({"srcaddr": "192.0.2.100"})));
        assert!(vpc[1].matches(&json!({"dstaddr": "192.0.2.101"})));
        assert!(!vpc[1].matches(&json!({"dstaddr": "192.0.2.10"})));
        assert!(!vpc[1].matches(&json!({"dstaddr": "x192.0.2.101"})));
        assert!(!vpc[1].matches(&json!({"dstaddr": "192.0.2.1011"})));
        let ct = ex.for_type("cloudtrail");
        assert!(ct[0].matches(&json!({"userIdentity": {"invokedBy": "config.amazonaws.com"}})));
        assert!(!ct[0].matches(&json!({"userIdentity": {"invokedBy": "AWS Internal"}})));
        assert!(!ct[0].matches(&json!({"userIdentity": "config.amazonaws.com"})));
        assert_eq!(
            ct[0].label,
            "exclude_log_patterns.csv:4 cloudtrail userIdentity.invokedBy=.*\\.amazonaws\\.com (regex)"
        );
        assert_eq!(ct[0].comment, "sample3");
        assert!(ex.for_type("waf").is_empty());
    }

    #[test]
    fn numbers_and_lists_match_by_their_text() {
        let ex = Exclusions::parse(
            "x.csv",
            "log_type,field,pattern,pattern_type,comment\nt,port,22,text,\nt,ips,10\\..*,regex,\n",
        )
        .expect("valid");
        let rules = ex.for_type("t");
        assert!(rules[0].matches(&json!({"port": 22})));
        assert!(rules[1].matches(&json!({"ips": ["192.0.2.1", "10.0.0.1"]})));
        let nested = Exclusions::parse(
            "x.csv",
            "log_type,field,pattern,pattern_type,comment
t,detail.findings.Id,f-2,text,
",
        )
        .expect("valid");
        let rule = &nested.for_type("t")[0];
        assert!(rule.matches(&json!({"detail": {"findings": [{"Id": "f-1"}, {"Id": "f-2"}]}})));
        assert!(!rule.matches(&json!({"detail": {"findings": [{"Id": "f-1"}]}})));
        assert!(!rule.matches(&json!({"detail": {"findings": {"Id": {"x": "f-2"}}}})));
        assert_eq!(
            first_match(rules, &json!({"port": "22"})).map(|r| r.field.as_str()),
            Some("port")
        );
        assert!(first_match(rules, &json!({"port": "23"})).is_none());
    }

    #[test]
    fn malformed_rows_name_their_line() {
        let cases = [
            (
                "log_type,field,pattern,pattern_type,comment\nt,f,x,glob,c\n",
                "x.csv:2: pattern_type `glob` is not text or regex",
            ),
            (
                "log_type,field,pattern,pattern_type,comment\nt,f,x,text,c\nt,f\n",
                "x.csv:3: 2 columns where the header names 5",
            ),
            (
                "log_type,field,pattern,pattern_type,comment\n\nt,f,(,regex,c\n",
                "x.csv:3: invalid regular expression `(`",
            ),
            (
                "log_type,field,pattern,pattern_type,comment\n,f,x,text,c\n",
                "x.csv:2: `log_type` is empty",
            ),
            ("type,field,pattern\n", "x.csv: the header row must name"),
        ];
        for (text, expected) in cases {
            let err = Exclusions::parse("x.csv", text)
                .expect_err(text)
                .to_string();
            assert!(err.starts_with(expected), "{err}");
        }
    }

    #[test]
    fn rules_of_unknown_types_are_warned_about() {
        let config = Config::builtin().expect("config");
        let ex = Exclusions::parse(
            "x.csv",
            "log_type,field,pattern,pattern_type,comment\ncloudtrail,a,b,text,\nnginx,a,b,text,\n",
        )
        .expect("valid");
        let warnings = ex.warnings(&config);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("`nginx`"));
    }
}
