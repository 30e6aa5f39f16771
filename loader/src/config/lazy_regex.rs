//! A configured regular expression, read when the configuration is and compiled at its
//! first use.
//!
//! The bundled types alone carry about a hundred patterns (keys, log groups, line layouts),
//! and compiling them all took a tenth of the CPU of a short load that meets one or two types.
//! The syntax is still checked when the configuration is read, so a wrong pattern is refused
//! there, naming its section and key; `loader check-config` also compiles every pattern.

use regex::Regex;
use regex_syntax::hir::{Hir, HirKind};
use std::sync::{Arc, OnceLock};

/// Clones share one compiled pattern.
#[derive(Clone)]
pub struct LazyRegex(Arc<Inner>);

struct Inner {
    pattern: String,
    compiled: OnceLock<Regex>,
}

impl LazyRegex {
    /// The pattern, if its syntax is right (the error is the regex crate's own words).
    pub fn new(pattern: &str) -> Result<Self, String> {
        regex_syntax::Parser::new()
            .parse(pattern)
            .map_err(|e| e.to_string())?;
        Ok(Self(Arc::new(Inner {
            pattern: pattern.to_owned(),
            compiled: OnceLock::new(),
        })))
    }

    pub fn as_str(&self) -> &str {
        &self.0.pattern
    }

    /// Whether the pattern has a group of this name, read from its syntax: a check made when
    /// the configuration is read need not compile the pattern.
    pub fn has_group(&self, name: &str) -> bool {
        fn named(hir: &Hir, name: &str) -> bool {
            match hir.kind() {
                HirKind::Capture(capture) => {
                    capture.name.as_deref() == Some(name) || named(&capture.sub, name)
                }
                HirKind::Concat(subs) | HirKind::Alternation(subs) => {
                    subs.iter().any(|sub| named(sub, name))
                }
                HirKind::Repetition(repetition) => named(&repetition.sub, name),
                HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_) => {
                    false
                }
            }
        }
        // The syntax was checked when the pattern was made.
        regex_syntax::Parser::new()
            .parse(&self.0.pattern)
            .is_ok_and(|hir| named(&hir, name))
    }

    /// Compiles the pattern now; `Err` only past the regex crate's size limit, which the
    /// syntax check cannot see.
    pub fn try_compile(&self) -> Result<&Regex, String> {
        if let Some(regex) = self.0.compiled.get() {
            return Ok(regex);
        }
        let regex = Regex::new(&self.0.pattern).map_err(|e| e.to_string())?;
        Ok(self.0.compiled.get_or_init(|| regex))
    }

    /// The compiled pattern. One too large to compile (said once) matches nothing.
    pub fn regex(&self) -> &Regex {
        match self.try_compile() {
            Ok(regex) => regex,
            Err(e) => self.0.compiled.get_or_init(|| {
                tracing::error!(
                    pattern = self.0.pattern,
                    "a configured regular expression cannot be compiled ({e}); it matches nothing"
                );
                never_matches()
            }),
        }
    }
}

fn never_matches() -> Regex {
    static NEVER: OnceLock<Regex> = OnceLock::new();
    NEVER
        .get_or_init(|| {
            Regex::new(r"[^\s\S]").unwrap_or_else(|e| unreachable!("a fixed pattern compiles: {e}"))
        })
        .clone()
}

impl std::ops::Deref for LazyRegex {
    type Target = Regex;
    fn deref(&self) -> &Regex {
        self.regex()
    }
}

impl std::fmt::Debug for LazyRegex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LazyRegex({:?})", self.0.pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_is_checked_at_once_and_the_pattern_compiles_at_first_use() {
        let err = LazyRegex::new("(unclosed").expect_err("syntax");
        assert!(err.contains("unclosed group"), "{err}");
        let re = LazyRegex::new(r"^AWSLogs/(\d{12})/").expect("pattern");
        let clone = re.clone();
        assert!(re.0.compiled.get().is_none(), "nothing compiled yet");
        assert_eq!(
            re.captures("AWSLogs/111122223333/x")
                .and_then(|c| c.get(1))
                .map(|m| m.as_str()),
            Some("111122223333")
        );
        assert!(
            clone.0.compiled.get().is_some(),
            "clones share the compiled pattern"
        );
        assert_eq!(clone.as_str(), r"^AWSLogs/(\d{12})/");
    }

    #[test]
    fn group_names_are_read_from_the_syntax_as_the_compiled_pattern_has_them() {
        for pattern in [
            r"_(?P<year>\d{4})(?P<month>\d{2})_",
            r"(?:a|(?<year>\d+))*",
            r"x((?P<inner>(?P<year>y)))z",
            r"(?P<years>\d{4})",
            r"(?P<month>\d{2})",
            r"\(?P<year>x\)",
            "[(?P<year>)]",
        ] {
            let lazy = LazyRegex::new(pattern).expect("pattern");
            let compiled = Regex::new(pattern).expect("compiles");
            for name in ["year", "month", "inner"] {
                assert_eq!(
                    lazy.has_group(name),
                    compiled.capture_names().flatten().any(|n| n == name),
                    "{pattern} {name}"
                );
            }
            assert!(lazy.0.compiled.get().is_none(), "{pattern}: not compiled");
        }
    }

    #[test]
    fn a_pattern_past_the_size_limit_is_refused_by_try_compile_and_matches_nothing() {
        // Valid syntax, but far over the regex crate's default size limit once compiled.
        let huge = LazyRegex::new(r"\w{1000}\w{1000}\w{1000}").expect("syntax is fine");
        assert!(huge.try_compile().is_err());
        assert!(!huge.is_match(&"a".repeat(3000)));
    }
}
