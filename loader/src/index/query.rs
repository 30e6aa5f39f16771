//! The query-string syntax of OpenSearch Dashboards' Lucene mode, parsed into a small tree
//! (pure: no index involved).
//!
//! `field:value`, `field:"a phrase"`, `field:Stop*` and `?` wildcards, `field:/regex/`,
//! `field:(a OR b)`, `AND` / `&&`, `OR` / `||`, `NOT` / `!`, `+required`, `-excluded`,
//! parentheses, ranges `field:[a TO b]` / `{a TO b}` / `[a TO *]`, comparisons `field:>=5`,
//! `_exists_:field`, a backslash before any special character (`source.ip:10.0.0.0\/8`).
//! Words side by side are alternatives (OR, as OpenSearch's default operator); `NOT` binds
//! tighter than `AND`, which binds tighter than `OR`.

use std::ops::Bound;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Every document (`*`, `*:*`, or an empty query).
    All,
    Term {
        field: Option<String>,
        value: Value,
    },
    Range {
        field: Option<String>,
        lower: Bound<String>,
        upper: Bound<String>,
    },
    Exists {
        field: String,
    },
    Bool(Vec<(Occur, Node)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occur {
    Must,
    Should,
    MustNot,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Word(String),
    Phrase(String),
    /// A word with unescaped `*` or `?`.
    Wildcard(String),
    Regex(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query: {reason} at character {at}")]
pub struct QueryError {
    pub at: usize,
    pub reason: String,
}

pub fn parse(query: &str) -> Result<Node, QueryError> {
    let mut parser = Parser {
        chars: query.chars().collect(),
        pos: 0,
    };
    let node = parser.or(None)?;
    parser.skip_ws();
    if parser.pos < parser.chars.len() {
        return Err(parser.error("unexpected `)`"));
    }
    Ok(node)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

/// Characters that end a word unless escaped.
fn special(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"' | ':' | '[' | ']' | '{' | '}')
}

impl Parser {
    fn error(&self, reason: impl Into<String>) -> QueryError {
        QueryError {
            at: self.pos + 1,
            reason: reason.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// An operator word (`AND`, `OR`, `NOT`) followed by white space or `(`.
    fn keyword(&mut self, word: &str) -> bool {
        let n = word.chars().count();
        let matches = self.chars[self.pos..]
            .iter()
            .take(n)
            .copied()
            .eq(word.chars())
            && self
                .chars
                .get(self.pos + n)
                .is_none_or(|c| c.is_whitespace() || *c == '(');
        if matches {
            self.pos += n;
        }
        matches
    }

    fn symbol(&mut self, symbol: &str) -> bool {
        let n = symbol.chars().count();
        let matches = self.chars[self.pos..]
            .iter()
            .take(n)
            .copied()
            .eq(symbol.chars());
        if matches {
            self.pos += n;
        }
        matches
    }

    /// Clauses up to the end or a `)`: alternatives unless marked required or excluded.
    fn or(&mut self, field: Option<&str>) -> Result<Node, QueryError> {
        let mut clauses = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None | Some(')') => break,
                _ => {}
            }
            if self.keyword("OR") || self.symbol("||") {
                continue;
            }
            clauses.push(self.and(field)?);
        }
        Ok(match clauses.len() {
            0 => Node::All,
            1 if clauses[0].0 == Occur::Should => clauses.remove(0).1,
            _ => Node::Bool(clauses),
        })
    }

    /// Clauses joined by `AND`: all required.
    fn and(&mut self, field: Option<&str>) -> Result<(Occur, Node), QueryError> {
        let first = self.unary(field)?;
        let mut joined = vec![first];
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.keyword("AND") || self.symbol("&&") {
                self.skip_ws();
                let (occur, node) = self.unary(field)?;
                let occur = if occur == Occur::MustNot {
                    Occur::MustNot
                } else {
                    Occur::Must
                };
                joined.push((occur, node));
            } else {
                self.pos = save;
                break;
            }
        }
        if joined.len() == 1 {
            return Ok(joined.remove(0));
        }
        if joined[0].0 == Occur::Should {
            joined[0].0 = Occur::Must;
        }
        Ok((Occur::Should, Node::Bool(joined)))
    }

    fn unary(&mut self, field: Option<&str>) -> Result<(Occur, Node), QueryError> {
        self.skip_ws();
        if self.keyword("NOT") || self.symbol("!") {
            let (_, node) = self.unary(field)?;
            return Ok((Occur::MustNot, node));
        }
        if self.symbol("+") {
            return Ok((Occur::Must, self.primary(field)?));
        }
        if self.peek() == Some('-') {
            self.pos += 1;
            return Ok((Occur::MustNot, self.primary(field)?));
        }
        Ok((Occur::Should, self.primary(field)?))
    }

    fn primary(&mut self, field: Option<&str>) -> Result<Node, QueryError> {
        self.skip_ws();
        match self.peek() {
            None => Err(self.error("a term is missing")),
            Some('(') => self.group(field),
            Some(')') => Err(self.error("a term is missing before `)`")),
            _ => {
                if field.is_none()
                    && let Some(name) = self.field_name()
                {
                    return self.field_value(&name);
                }
                self.value(field)
            }
        }
    }

    fn group(&mut self, field: Option<&str>) -> Result<Node, QueryError> {
        self.pos += 1;
        let node = self.or(field)?;
        self.skip_ws();
        if !self.symbol(")") {
            return Err(self.error("`(` is never closed"));
        }
        Ok(node)
    }

    /// `name:` ahead (consumed), else nothing is consumed.
    fn field_name(&mut self) -> Option<String> {
        let start = self.pos;
        let mut name = String::new();
        while let Some(c) = self.peek() {
            match c {
                '\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some(escaped) => name.push(escaped),
                        None => break,
                    }
                    self.pos += 1;
                }
                ':' if !name.is_empty() => {
                    self.pos += 1;
                    return Some(name);
                }
                c if special(c) => break,
                c => {
                    name.push(c);
                    self.pos += 1;
                }
            }
        }
        self.pos = start;
        None
    }

    fn field_value(&mut self, name: &str) -> Result<Node, QueryError> {
        if name == "_exists_" {
            return match self.value(None)? {
                Node::Term {
                    value: Value::Word(field),
                    ..
                } => Ok(Node::Exists { field }),
                _ => Err(self.error("`_exists_:` takes a field name")),
            };
        }
        match self.peek() {
            Some('(') => self.group(Some(name)),
            Some('[' | '{') => self.range(name),
            Some('>' | '<') => self.comparison(name),
            _ if name == "*" => match self.value(None)? {
                Node::Term {
                    value: Value::Wildcard(w),
                    ..
                } if w == "*" => Ok(Node::All),
                Node::Term { value, .. } => Ok(Node::Term { field: None, value }),
                other => Ok(other),
            },
            _ => self.value(Some(name)),
        }
    }

    /// A word, phrase, wildcard or regex, for `field` (or every field).
    fn value(&mut self, field: Option<&str>) -> Result<Node, QueryError> {
        let field = field.map(str::to_owned);
        match self.peek() {
            Some('"') => {
                self.pos += 1;
                let text = self.until('"', "a phrase's closing `\"` is missing")?;
                Ok(Node::Term {
                    field,
                    value: Value::Phrase(text),
                })
            }
            Some('/') => {
                self.pos += 1;
                let text = self.until('/', "a regular expression's closing `/` is missing")?;
                Ok(Node::Term {
                    field,
                    value: Value::Regex(text),
                })
            }
            _ => {
                let (word, wildcard) = self.word()?;
                if word == "*" && field.is_none() {
                    return Ok(Node::All);
                }
                Ok(Node::Term {
                    field,
                    value: if wildcard {
                        Value::Wildcard(word)
                    } else {
                        Value::Word(word)
                    },
                })
            }
        }
    }

    /// Text up to an unescaped `end`, consumed.
    fn until(&mut self, end: char, missing: &str) -> Result<String, QueryError> {
        let mut text = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '\\' => {
                    if let Some(next) = self.peek() {
                        // In a regex the escape is the regex's own.
                        if end == '/' && next != '/' {
                            text.push('\\');
                        }
                        text.push(next);
                        self.pos += 1;
                    }
                }
                c if c == end => return Ok(text),
                c => text.push(c),
            }
        }
        Err(self.error(missing))
    }

    /// A bare word; whether it holds an unescaped wildcard.
    fn word(&mut self) -> Result<(String, bool), QueryError> {
        let mut word = String::new();
        let mut wildcard = false;
        while let Some(c) = self.peek() {
            match c {
                '\\' => {
                    self.pos += 1;
                    if let Some(next) = self.peek() {
                        // An escaped wildcard is the character itself: kept escaped.
                        if matches!(next, '*' | '?') {
                            word.push('\\');
                        }
                        word.push(next);
                        self.pos += 1;
                    }
                }
                c if special(c) => break,
                c => {
                    if matches!(c, '*' | '?') {
                        wildcard = true;
                    }
                    word.push(c);
                    self.pos += 1;
                }
            }
        }
        if word.is_empty() {
            return Err(self.error(match self.peek() {
                Some(c) => format!("a term is missing before `{c}`"),
                None => "a term is missing".to_owned(),
            }));
        }
        if !wildcard {
            word = word.replace("\\*", "*").replace("\\?", "?");
        }
        Ok((word, wildcard))
    }

    /// `[a TO b]`, `{a TO b}`, either side `*` for open.
    fn range(&mut self, name: &str) -> Result<Node, QueryError> {
        let inclusive_low = self.peek() == Some('[');
        self.pos += 1;
        self.skip_ws();
        let (low, _) = self.range_word()?;
        self.skip_ws();
        if !self.keyword("TO") {
            return Err(self.error("a range is `[low TO high]`"));
        }
        self.skip_ws();
        let (high, _) = self.range_word()?;
        self.skip_ws();
        let inclusive_high = match self.peek() {
            Some(']') => true,
            Some('}') => false,
            _ => return Err(self.error("a range ends with `]` or `}`")),
        };
        self.pos += 1;
        let bound = |v: String, inclusive: bool| match (v.as_str(), inclusive) {
            ("*", _) => Bound::Unbounded,
            (_, true) => Bound::Included(v),
            (_, false) => Bound::Excluded(v),
        };
        Ok(Node::Range {
            field: Some(name.to_owned()),
            lower: bound(low, inclusive_low),
            upper: bound(high, inclusive_high),
        })
    }

    /// A range end: a word or a quoted value.
    fn range_word(&mut self) -> Result<(String, bool), QueryError> {
        if self.peek() == Some('"') {
            self.pos += 1;
            return Ok((
                self.until('"', "a quoted value's closing `\"` is missing")?,
                false,
            ));
        }
        let mut word = String::new();
        while let Some(c) = self.peek() {
            match c {
                '\\' => {
                    self.pos += 1;
                    if let Some(next) = self.peek() {
                        word.push(next);
                        self.pos += 1;
                    }
                }
                ']' | '}' => break,
                c if c.is_whitespace() => break,
                c => {
                    word.push(c);
                    self.pos += 1;
                }
            }
        }
        if word.is_empty() {
            return Err(self.error("a range end is missing"));
        }
        Ok((word, false))
    }

    /// `>=5`, `<2026-01-01`, ...
    fn comparison(&mut self, name: &str) -> Result<Node, QueryError> {
        let greater = self.peek() == Some('>');
        self.pos += 1;
        let inclusive = self.symbol("=");
        let (value, _) = self.word()?;
        let (lower, upper) = match (greater, inclusive) {
            (true, true) => (Bound::Included(value), Bound::Unbounded),
            (true, false) => (Bound::Excluded(value), Bound::Unbounded),
            (false, true) => (Bound::Unbounded, Bound::Included(value)),
            (false, false) => (Bound::Unbounded, Bound::Excluded(value)),
        };
        Ok(Node::Range {
            field: Some(name.to_owned()),
            lower,
            upper,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(field: &str, word: &str) -> Node {
        Node::Term {
            field: Some(field.to_owned()),
            value: Value::Word(word.to_owned()),
        }
    }

    #[test]
    fn fields_phrases_wildcards_and_escapes() {
        assert_eq!(
            parse("eventName:StopLogging").expect("q"),
            term("eventName", "StopLogging")
        );
        assert_eq!(
            parse(r#"message:"Failed password""#).expect("q"),
            Node::Term {
                field: Some("message".into()),
                value: Value::Phrase("Failed password".into())
            }
        );
        assert_eq!(
            parse("user.name:adm*").expect("q"),
            Node::Term {
                field: Some("user.name".into()),
                value: Value::Wildcard("adm*".into())
            }
        );
        assert_eq!(
            parse(r"source.ip:10.0.0.0\/8").expect("q"),
            term("source.ip", "10.0.0.0/8")
        );
        assert_eq!(parse(r"a:x\:y").expect("q"), term("a", "x:y"));
        assert_eq!(
            parse("a:/St.p[A-Z].*/").expect("q"),
            Node::Term {
                field: Some("a".into()),
                value: Value::Regex("St.p[A-Z].*".into())
            }
        );
        assert_eq!(
            parse("StopLogging").expect("q"),
            Node::Term {
                field: None,
                value: Value::Word("StopLogging".into())
            }
        );
        assert_eq!(parse("*").expect("q"), Node::All);
        assert_eq!(parse("*:*").expect("q"), Node::All);
        assert_eq!(parse("  ").expect("q"), Node::All);
        assert_eq!(
            parse("@timestamp:2026-03-04").expect("q"),
            term("@timestamp", "2026-03-04")
        );
    }

    #[test]
    fn boolean_operators_groups_and_precedence() {
        let a = term("a", "1");
        let b = term("b", "2");
        let c = term("c", "3");
        assert_eq!(
            parse("a:1 OR b:2").expect("q"),
            Node::Bool(vec![(Occur::Should, a.clone()), (Occur::Should, b.clone())])
        );
        assert_eq!(
            parse("a:1 b:2").expect("q"),
            parse("a:1 || b:2").expect("q")
        );
        assert_eq!(
            parse("a:1 AND NOT b:2").expect("q"),
            Node::Bool(vec![(Occur::Must, a.clone()), (Occur::MustNot, b.clone())])
        );
        assert_eq!(
            parse("a:1 && !b:2").expect("q"),
            parse("a:1 AND NOT b:2").expect("q")
        );
        // AND before OR.
        assert_eq!(
            parse("a:1 OR b:2 AND c:3").expect("q"),
            Node::Bool(vec![
                (Occur::Should, a.clone()),
                (
                    Occur::Should,
                    Node::Bool(vec![(Occur::Must, b.clone()), (Occur::Must, c.clone())])
                )
            ])
        );
        assert_eq!(
            parse("(a:1 OR b:2) AND c:3").expect("q"),
            Node::Bool(vec![
                (
                    Occur::Must,
                    Node::Bool(vec![(Occur::Should, a.clone()), (Occur::Should, b.clone())])
                ),
                (Occur::Must, c.clone())
            ])
        );
        assert_eq!(
            parse("+a:1 -b:2 c:3").expect("q"),
            Node::Bool(vec![
                (Occur::Must, a.clone()),
                (Occur::MustNot, b.clone()),
                (Occur::Should, c.clone())
            ])
        );
        assert_eq!(
            parse("NOT a:1").expect("q"),
            Node::Bool(vec![(Occur::MustNot, a.clone())])
        );
        assert_eq!(
            parse("a:(1 OR 2)").expect("q"),
            Node::Bool(vec![
                (Occur::Should, term("a", "1")),
                (Occur::Should, term("a", "2"))
            ])
        );
        // Lower-case words are words, not operators.
        assert_eq!(parse("a:and").expect("q"), term("a", "and"));
    }

    #[test]
    fn ranges_comparisons_and_exists() {
        assert_eq!(
            parse("n:[1 TO 10}").expect("q"),
            Node::Range {
                field: Some("n".into()),
                lower: Bound::Included("1".into()),
                upper: Bound::Excluded("10".into())
            }
        );
        assert_eq!(
            parse("@timestamp:[now-7d TO *]").expect("q"),
            Node::Range {
                field: Some("@timestamp".into()),
                lower: Bound::Included("now-7d".into()),
                upper: Bound::Unbounded
            }
        );
        assert_eq!(
            parse("n:>=5").expect("q"),
            Node::Range {
                field: Some("n".into()),
                lower: Bound::Included("5".into()),
                upper: Bound::Unbounded
            }
        );
        assert_eq!(
            parse("n:<5").expect("q"),
            Node::Range {
                field: Some("n".into()),
                lower: Bound::Unbounded,
                upper: Bound::Excluded("5".into())
            }
        );
        assert_eq!(
            parse("_exists_:user.name").expect("q"),
            Node::Exists {
                field: "user.name".into()
            }
        );
    }

    #[test]
    fn mistakes_are_named_with_their_place() {
        for (query, words) in [
            ("a:(1 OR 2", "never closed"),
            ("a:1)", "unexpected `)`"),
            ("a:\"open", "closing `\"`"),
            ("n:[1 10]", "[low TO high]"),
            ("a:", "missing"),
            ("a:1 AND", "missing"),
        ] {
            let e = parse(query).expect_err(query).to_string();
            assert!(
                e.contains(words) && e.contains("at character"),
                "{query}: {e}"
            );
        }
    }
}
