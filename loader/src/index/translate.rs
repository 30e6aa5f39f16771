//! A parsed query string as a tantivy query over the index's fields, with the meaning
//! OpenSearch gives the same query on the same mapping: exact terms on keyword fields, words
//! on `message`, numbers and dates compared as such, an IP field's value an address or a CIDR
//! block, a word without a field matched against every value (and `message`'s words).

use super::query::{Node, Occur as QueryOccur, Value};
use super::schema::{IndexSchema, Kind, REST, parse_ip};
use chrono::{DateTime as ChronoTime, Duration, NaiveDate, Utc};
use std::net::Ipv6Addr;
use std::ops::Bound;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, ExistsQuery, Occur, PhraseQuery, Query, RangeQuery,
    RegexQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::{TextAnalyzer, TokenizerManager};
use tantivy::{DateTime, Term};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query: {0}")]
pub struct TranslateError(pub String);

/// What a query is translated against.
pub struct Target<'a> {
    pub schema: &'a IndexSchema,
    pub tokenizers: &'a TokenizerManager,
    /// The time `now` means in dates.
    pub now: ChronoTime<Utc>,
}

impl Target<'_> {
    pub fn query(&self, node: &Node) -> Result<Box<dyn Query>, TranslateError> {
        match node {
            Node::All => Ok(Box::new(AllQuery)),
            Node::Bool(clauses) => {
                let mut out = Vec::with_capacity(clauses.len() + 1);
                for (occur, clause) in clauses {
                    let occur = match occur {
                        QueryOccur::Must => Occur::Must,
                        QueryOccur::Should => Occur::Should,
                        QueryOccur::MustNot => Occur::MustNot,
                    };
                    out.push((occur, self.query(clause)?));
                }
                // Only exclusions: they exclude from everything (as OpenSearch reads them).
                if out.iter().all(|(o, _)| *o == Occur::MustNot) {
                    out.push((Occur::Must, Box::new(AllQuery)));
                }
                Ok(Box::new(BooleanQuery::new(out)))
            }
            Node::Term { field: None, value } => self.anywhere(value),
            Node::Term {
                field: Some(field),
                value,
            } => self.term(field, value),
            Node::Range {
                field,
                lower,
                upper,
            } => {
                let field = field
                    .as_deref()
                    .ok_or_else(|| TranslateError("a range needs a field".to_owned()))?;
                self.range(field, lower, upper)
            }
            Node::Exists { field } => Ok(self.exists(field)),
        }
    }

    /// A word without a field: any value equal to it (keywords, numbers, addresses, the values
    /// of `_rest` under any path), or a word of a text field.
    fn anywhere(&self, value: &Value) -> Result<Box<dyn Query>, TranslateError> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let rest = self.field(REST)?;
        let any_path = |v: &str| format!("[^\\x00]*\\x00s{v}");
        match value {
            Value::Word(w) | Value::Phrase(w) => {
                let number = w.parse::<f64>().ok();
                let ip = parse_ip(w);
                for (_, field, kind) in self.schema.declared_fields() {
                    let query = match kind {
                        Kind::Keyword => term_query(Term::from_field_text(field, w)),
                        Kind::Integer => match w.parse::<i64>() {
                            Ok(n) => term_query(Term::from_field_i64(field, n)),
                            Err(_) => continue,
                        },
                        Kind::Float => match number {
                            Some(n) => term_query(Term::from_field_f64(field, n)),
                            None => continue,
                        },
                        Kind::Ip => match ip {
                            Some(ip) => term_query(Term::from_field_ip_addr(field, ip)),
                            None => continue,
                        },
                        _ => continue,
                    };
                    clauses.push((Occur::Should, query));
                }
                clauses.push((Occur::Should, regex(&any_path(&literal_regex(w)), rest)?));
            }
            Value::Wildcard(w) => {
                for (_, field, kind) in self.schema.declared_fields() {
                    if kind == Kind::Keyword {
                        clauses.push((Occur::Should, regex(&wildcard_regex(w), field)?));
                    }
                }
                clauses.push((Occur::Should, regex(&any_path(&wildcard_regex(w)), rest)?));
            }
            Value::Regex(r) => {
                for (_, field, kind) in self.schema.declared_fields() {
                    if kind == Kind::Keyword {
                        clauses.push((Occur::Should, regex(r, field)?));
                    }
                }
                clauses.push((Occur::Should, regex(&any_path(r), rest)?));
            }
        }
        for (field, _) in self.text_fields() {
            clauses.push((Occur::Should, self.text(field, value)?));
        }
        Ok(Box::new(BooleanQuery::new(clauses)))
    }

    fn text_fields(&self) -> Vec<(Field, Kind)> {
        ["message"]
            .iter()
            .filter_map(|name| self.schema.declared(name))
            .filter(|(_, k)| *k == Kind::Text)
            .collect()
    }

    fn field(&self, name: &str) -> Result<Field, TranslateError> {
        self.schema
            .schema
            .get_field(name)
            .map_err(|_| TranslateError(format!("the index has no `{name}` field")))
    }

    fn term(&self, path: &str, value: &Value) -> Result<Box<dyn Query>, TranslateError> {
        if path.contains('*') {
            return Err(TranslateError(format!(
                "`{path}`: field names with wildcards are not supported; name the field"
            )));
        }
        let Some((field, kind)) = self.declared(path) else {
            return self.rest_term(path, value);
        };
        let mismatch = |what: &str| {
            TranslateError(format!(
                "`{path}` is {what}: `{}` cannot match it",
                text_of(value)
            ))
        };
        Ok(match (kind, value) {
            (Kind::Keyword, Value::Word(w) | Value::Phrase(w)) => {
                term_query(Term::from_field_text(field, w))
            }
            (Kind::Keyword, Value::Wildcard(w)) => regex(&wildcard_regex(w), field)?,
            (Kind::Keyword | Kind::Text, Value::Regex(r)) => regex(r, field)?,
            (Kind::Text, _) => self.text(field, value)?,
            (Kind::Ip, Value::Word(w) | Value::Phrase(w)) => match cidr(w) {
                Some((low, high)) => Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_ip_addr(field, low)),
                    Bound::Included(Term::from_field_ip_addr(field, high)),
                )),
                None => return Err(mismatch("an IP address field (an address or a CIDR block)")),
            },
            (Kind::Integer, Value::Word(w) | Value::Phrase(w)) => match w.trim().parse::<i64>() {
                Ok(n) => term_query(Term::from_field_i64(field, n)),
                Err(_) => match w.trim().parse::<f64>() {
                    // 3.5 on a whole-number field matches nothing, as there.
                    Ok(_) => Box::new(EmptyQuery),
                    Err(_) => return Err(mismatch("a number field")),
                },
            },
            (Kind::Float, Value::Word(w) | Value::Phrase(w)) => match w.trim().parse::<f64>() {
                Ok(n) => term_query(Term::from_field_f64(field, n)),
                Err(_) => return Err(mismatch("a number field")),
            },
            (Kind::Boolean, Value::Word(w) | Value::Phrase(w)) => match w.as_str() {
                "true" => term_query(Term::from_field_bool(field, true)),
                "false" => term_query(Term::from_field_bool(field, false)),
                _ => return Err(mismatch("a true/false field")),
            },
            (Kind::Date, Value::Word(w) | Value::Phrase(w)) => {
                let (low, high) = self
                    .date(w)
                    .ok_or_else(|| mismatch("a date field (an ISO 8601 date, `now-1d`, ...)"))?;
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_date_for_search(field, low)),
                    Bound::Included(Term::from_field_date_for_search(field, high)),
                ))
            }
            (_, Value::Wildcard(_) | Value::Regex(_)) => {
                return Err(mismatch(
                    "not a text field; wildcards and regular expressions",
                ));
            }
        })
    }

    fn declared(&self, path: &str) -> Option<(Field, Kind)> {
        if path == super::schema::TIMESTAMP {
            return Some((self.schema.timestamp, Kind::Date));
        }
        self.schema.declared(path)
    }

    /// Words of a text field (`message`): each word of the value, a phrase in order.
    fn text(&self, field: Field, value: &Value) -> Result<Box<dyn Query>, TranslateError> {
        match value {
            Value::Word(w) => {
                let mut terms = self.words(field, w);
                Ok(match terms.len() {
                    0 => Box::new(EmptyQuery),
                    1 => term_query(terms.remove(0)),
                    _ => Box::new(BooleanQuery::new(
                        terms
                            .into_iter()
                            .map(|t| (Occur::Should, term_query(t)))
                            .collect(),
                    )),
                })
            }
            Value::Phrase(p) => {
                let mut terms = self.words(field, p);
                Ok(match terms.len() {
                    0 => Box::new(EmptyQuery),
                    1 => term_query(terms.remove(0)),
                    _ => Box::new(PhraseQuery::new(terms)),
                })
            }
            Value::Wildcard(w) => regex(&wildcard_regex(&w.to_lowercase()), field),
            Value::Regex(r) => regex(r, field),
        }
    }

    fn words(&self, field: Field, text: &str) -> Vec<Term> {
        let mut analyzer: TextAnalyzer = self
            .tokenizers
            .get("default")
            .unwrap_or_else(|| TextAnalyzer::from(tantivy::tokenizer::SimpleTokenizer::default()));
        let mut stream = analyzer.token_stream(text);
        let mut terms = Vec::new();
        while let Some(token) = stream.next() {
            terms.push(Term::from_field_text(field, &token.text));
        }
        terms
    }

    /// A field no table declares: its values are exact terms (or numbers) under its path.
    fn rest_term(&self, path: &str, value: &Value) -> Result<Box<dyn Query>, TranslateError> {
        let rest = self.field(REST)?;
        let base = || Term::from_field_json_path(rest, path, true);
        Ok(match value {
            Value::Word(w) | Value::Phrase(w) => {
                let mut text = base();
                text.append_type_and_str(w);
                let mut alternatives: Vec<(Occur, Box<dyn Query>)> =
                    vec![(Occur::Should, term_query(text))];
                if let Ok(i) = w.parse::<i64>() {
                    let mut t = base();
                    t.append_type_and_fast_value(i);
                    alternatives.push((Occur::Should, term_query(t)));
                    if let Ok(u) = u64::try_from(i) {
                        let mut t = base();
                        t.append_type_and_fast_value(u);
                        alternatives.push((Occur::Should, term_query(t)));
                    }
                } else if let Ok(f) = w.parse::<f64>() {
                    let mut t = base();
                    t.append_type_and_fast_value(f);
                    alternatives.push((Occur::Should, term_query(t)));
                }
                if let Ok(b) = w.parse::<bool>() {
                    let mut t = base();
                    t.append_type_and_fast_value(b);
                    alternatives.push((Occur::Should, term_query(t)));
                }
                Box::new(BooleanQuery::new(alternatives))
            }
            Value::Wildcard(w) => regex(&rest_regex(path, &wildcard_regex(w)), rest)?,
            Value::Regex(r) => regex(&rest_regex(path, r), rest)?,
        })
    }

    fn range(
        &self,
        path: &str,
        lower: &Bound<String>,
        upper: &Bound<String>,
    ) -> Result<Box<dyn Query>, TranslateError> {
        let bad = |v: &str, what: &str| {
            TranslateError(format!("`{path}:` range end `{v}` is not {what}"))
        };
        let Some((field, kind)) = self.declared(path) else {
            let rest = self.field(REST)?;
            let numeric = [lower, upper].iter().all(|b| match b {
                Bound::Included(v) | Bound::Excluded(v) => v.parse::<f64>().is_ok(),
                Bound::Unbounded => true,
            });
            let term = |v: &str| {
                let mut t = Term::from_field_json_path(rest, path, true);
                match (numeric, v.parse::<i64>(), v.parse::<f64>()) {
                    (true, Ok(i), _) => t.append_type_and_fast_value(i),
                    (true, _, Ok(f)) => t.append_type_and_fast_value(f),
                    _ => t.append_type_and_str(v),
                }
                Ok::<Term, TranslateError>(t)
            };
            return Ok(Box::new(RangeQuery::new(
                map_bound(lower, &term)?,
                map_bound(upper, &term)?,
            )));
        };
        let query = match kind {
            Kind::Keyword | Kind::Text => RangeQuery::new(
                map_bound(lower, &|v| Ok(Term::from_field_text(field, v)))?,
                map_bound(upper, &|v| Ok(Term::from_field_text(field, v)))?,
            ),
            Kind::Integer => {
                let t = |v: &str| {
                    v.trim()
                        .parse::<i64>()
                        .map(|n| Term::from_field_i64(field, n))
                        .map_err(|_| bad(v, "a whole number"))
                };
                RangeQuery::new(map_bound(lower, &t)?, map_bound(upper, &t)?)
            }
            Kind::Float => {
                let t = |v: &str| {
                    v.trim()
                        .parse::<f64>()
                        .map(|n| Term::from_field_f64(field, n))
                        .map_err(|_| bad(v, "a number"))
                };
                RangeQuery::new(map_bound(lower, &t)?, map_bound(upper, &t)?)
            }
            Kind::Ip => {
                let t = |v: &str| {
                    parse_ip(v)
                        .map(|ip| Term::from_field_ip_addr(field, ip))
                        .ok_or_else(|| bad(v, "an IP address"))
                };
                RangeQuery::new(map_bound(lower, &t)?, map_bound(upper, &t)?)
            }
            Kind::Date => {
                // A day included as an upper end counts to its last millisecond.
                let low = |v: &str| {
                    self.date(v)
                        .map(|(l, _)| Term::from_field_date_for_search(field, l))
                        .ok_or_else(|| bad(v, "a date"))
                };
                let high = |v: &str| {
                    self.date(v)
                        .map(|(_, h)| Term::from_field_date_for_search(field, h))
                        .ok_or_else(|| bad(v, "a date"))
                };
                let lower = match lower {
                    Bound::Included(v) => Bound::Included(low(v)?),
                    Bound::Excluded(v) => Bound::Excluded(high(v)?),
                    Bound::Unbounded => Bound::Unbounded,
                };
                let upper = match upper {
                    Bound::Included(v) => Bound::Included(high(v)?),
                    Bound::Excluded(v) => Bound::Excluded(low(v)?),
                    Bound::Unbounded => Bound::Unbounded,
                };
                RangeQuery::new(lower, upper)
            }
            Kind::Boolean => return Err(bad("true/false", "ordered")),
        };
        Ok(Box::new(query))
    }

    /// `_exists_:field`: a declared field, an object's declared fields or any path below it
    /// in `_rest`.
    fn exists(&self, path: &str) -> Box<dyn Query> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut add = |name: &str, kind: Kind, field: Field| {
            let query: Box<dyn Query> = match kind {
                // Not a fast field: any word of it.
                Kind::Text => match RegexQuery::from_pattern(".*", field) {
                    Ok(q) => Box::new(q),
                    Err(_) => return,
                },
                _ => Box::new(ExistsQuery::new(name.to_owned(), false)),
            };
            clauses.push((Occur::Should, query));
        };
        if let Some((field, kind)) = self.declared(path) {
            add(path, kind, field);
        }
        for name in self.schema.declared_below(path) {
            if let Some((field, kind)) = self.schema.declared(name) {
                add(name, kind, field);
            }
        }
        clauses.push((
            Occur::Should,
            Box::new(ExistsQuery::new(format!("{REST}.{path}"), true)),
        ));
        Box::new(BooleanQuery::new(clauses))
    }

    /// A date (or date math) as the first and last millisecond it covers: `2026-03-04` is the
    /// whole day, a full timestamp itself, `now-7d` (units y M w d h m s) an instant.
    fn date(&self, text: &str) -> Option<(DateTime, DateTime)> {
        let text = text.trim();
        let instant = |t: ChronoTime<Utc>| {
            let d = DateTime::from_timestamp_millis(t.timestamp_millis());
            (d, d)
        };
        if let Some(math) = text.strip_prefix("now") {
            return date_math(self.now, math).map(instant);
        }
        if let Ok(t) = ChronoTime::parse_from_rfc3339(text) {
            return Some(instant(t.with_timezone(&Utc)));
        }
        if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            let start = day.and_hms_opt(0, 0, 0)?.and_utc();
            let end = start + Duration::days(1) - Duration::milliseconds(1);
            return Some((
                DateTime::from_timestamp_millis(start.timestamp_millis()),
                DateTime::from_timestamp_millis(end.timestamp_millis()),
            ));
        }
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
            return Some(instant(t.and_utc()));
        }
        text.parse::<i64>().ok().map(|ms| {
            let d = DateTime::from_timestamp_millis(ms);
            (d, d)
        })
    }
}

/// `-7d`, `+1h`, `` (now itself): units y, M, w, d, h (or H), m, s.
pub fn date_math(now: ChronoTime<Utc>, math: &str) -> Option<ChronoTime<Utc>> {
    let math = math.trim();
    if math.is_empty() {
        return Some(now);
    }
    let (sign, rest) = match math.as_bytes().first()? {
        b'-' => (-1, &math[1..]),
        b'+' => (1, &math[1..]),
        _ => return None,
    };
    let unit = rest.chars().last()?;
    let amount: i64 = rest[..rest.len() - unit.len_utf8()].parse().ok()?;
    let step = match unit {
        's' => Duration::seconds(amount),
        'm' => Duration::minutes(amount),
        'h' | 'H' => Duration::hours(amount),
        'd' => Duration::days(amount),
        'w' => Duration::weeks(amount),
        'M' => Duration::days(30 * amount),
        'y' => Duration::days(365 * amount),
        _ => return None,
    };
    Some(now + step * sign)
}

fn map_bound(
    bound: &Bound<String>,
    term: &dyn Fn(&str) -> Result<Term, TranslateError>,
) -> Result<Bound<Term>, TranslateError> {
    Ok(match bound {
        Bound::Included(v) => Bound::Included(term(v)?),
        Bound::Excluded(v) => Bound::Excluded(term(v)?),
        Bound::Unbounded => Bound::Unbounded,
    })
}

fn term_query(term: Term) -> Box<dyn Query> {
    Box::new(TermQuery::new(term, IndexRecordOption::Basic))
}

fn regex(pattern: &str, field: Field) -> Result<Box<dyn Query>, TranslateError> {
    RegexQuery::from_pattern(pattern, field)
        .map(|q| Box::new(q) as Box<dyn Query>)
        .map_err(|e| {
            TranslateError(format!(
                "`{pattern}` is not a usable regular expression: {e}"
            ))
        })
}

/// A value matched as it is.
fn literal_regex(value: &str) -> String {
    value.chars().map(regex_escape).collect()
}

/// `Stop*` → `Stop.*`, `?` one character, everything else literal.
fn wildcard_regex(wildcard: &str) -> String {
    let mut out = String::new();
    let mut chars = wildcard.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push_str(&regex_escape(next));
                }
            }
            c => out.push_str(&regex_escape(c)),
        }
    }
    out
}

fn regex_escape(c: char) -> String {
    if c.is_alphanumeric() || c == '_' || !c.is_ascii() {
        c.to_string()
    } else {
        format!("\\{c}")
    }
}

/// A regex over `_rest`'s terms of one path: the path (segments joined by tantivy's separator),
/// the end-of-path byte, the string type, then the value.
fn rest_regex(path: &str, value: &str) -> String {
    let segments: Vec<String> = path
        .split('.')
        .map(|s| s.chars().map(regex_escape).collect())
        .collect();
    format!("{}\\x00s{value}", segments.join("\\x01"))
}

/// An address (its own range) or a CIDR block as its first and last address.
fn cidr(text: &str) -> Option<(Ipv6Addr, Ipv6Addr)> {
    let text = text.trim();
    let Some((addr, bits)) = text.split_once('/') else {
        let ip = parse_ip(text)?;
        return Some((ip, ip));
    };
    let bits: u32 = bits.parse().ok()?;
    let v4 = addr.parse::<std::net::Ipv4Addr>().is_ok();
    let ip = parse_ip(addr)?;
    let prefix = if v4 { bits.checked_add(96)? } else { bits };
    if prefix > 128 || (v4 && bits > 32) {
        return None;
    }
    let n = u128::from(ip);
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    Some((Ipv6Addr::from(n & mask), Ipv6Addr::from(n | !mask)))
}

fn text_of(value: &Value) -> &str {
    match value {
        Value::Word(s) | Value::Phrase(s) | Value::Wildcard(s) | Value::Regex(s) => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_blocks_are_their_first_and_last_address() {
        let (low, high) = cidr("10.0.0.0/8").expect("v4");
        assert_eq!(low, parse_ip("10.0.0.0").expect("ip"));
        assert_eq!(high, parse_ip("10.255.255.255").expect("ip"));
        let (low, high) = cidr("2001:db8::/32").expect("v6");
        assert_eq!(low, "2001:db8::".parse::<Ipv6Addr>().expect("ip"));
        assert_eq!(
            high,
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"
                .parse::<Ipv6Addr>()
                .expect("ip")
        );
        assert_eq!(
            cidr("192.0.2.7"),
            Some((
                parse_ip("192.0.2.7").expect("ip"),
                parse_ip("192.0.2.7").expect("ip")
            ))
        );
        assert_eq!(cidr("10.0.0.0/33"), None);
        assert_eq!(cidr("host/8"), None);
    }

    #[test]
    fn wildcards_and_date_math() {
        assert_eq!(wildcard_regex("Stop*"), "Stop.*");
        assert_eq!(wildcard_regex("a.b?c"), "a\\.b.c");
        assert_eq!(wildcard_regex("x\\*"), "x\\*");
        let now = ChronoTime::parse_from_rfc3339("2026-03-10T00:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        assert_eq!(
            date_math(now, "-7d").map(|t| t.to_rfc3339()),
            Some("2026-03-03T00:00:00+00:00".to_owned())
        );
        assert_eq!(date_math(now, "-24h"), date_math(now, "-1d"));
        assert_eq!(date_math(now, ""), Some(now));
        assert_eq!(date_math(now, "-7x"), None);
    }
}
