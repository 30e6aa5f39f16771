//! The INI dialect of the es-loader's `aws.ini`/`user.ini`: Python `configparser` with
//! `ExtendedInterpolation`, as that program reads it.
//!
//! Rules followed: sections in file order; `[DEFAULT]` values visible in every section; `key =
//! value` and `key: value` (the first `=` or `:` splits); keys case-insensitive (lower-cased),
//! section names case-sensitive; values continue on lines indented deeper than the key line
//! (blank lines inside a value are kept, trailing ones dropped); full-line `#` and `;` comments;
//! duplicate sections or keys inside one file are errors; a later file overrides an earlier one
//! key by key and appends new sections; `${key}` (same section or `[DEFAULT]`),
//! `${section:key}` and `$$` are resolved when a value is read, ten levels deep at most.

use std::sync::Arc;

/// Where a value was written, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<str>,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IniError {
    #[error("{file}:{line}: `{text}` appears before any [section] header")]
    MissingSectionHeader {
        file: Arc<str>,
        line: usize,
        text: String,
    },
    #[error("{file}:{line}: expected `key = value`, `key: value` or `[section]`, found `{text}`")]
    Syntax {
        file: Arc<str>,
        line: usize,
        text: String,
    },
    #[error("{file}:{line}: section [{section}] appears twice in this file")]
    DuplicateSection {
        file: Arc<str>,
        line: usize,
        section: String,
    },
    #[error("{file}:{line}: [{section}] key `{key}` appears twice in this section")]
    DuplicateKey {
        file: Arc<str>,
        line: usize,
        section: String,
        key: String,
    },
    #[error("{origin}: [{section}] {key}: {reason}")]
    Interpolation {
        origin: Origin,
        section: String,
        key: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    key: String,
    value: String,
    origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Section {
    name: String,
    entries: Vec<Entry>,
}

impl Section {
    fn find(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    fn upsert(&mut self, entry: Entry) {
        match self.entries.iter_mut().find(|e| e.key == entry.key) {
            Some(existing) => *existing = entry,
            None => self.entries.push(entry),
        }
    }
}

/// The default section's name, as in Python.
pub const DEFAULT_SECTION: &str = "DEFAULT";
const MAX_DEPTH: usize = 10;

/// A parsed configuration: one or more files merged in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ini {
    defaults: Section,
    sections: Vec<Section>,
    /// (other name, name): a section written under the other name is the same section.
    aliases: Vec<(String, String)>,
}

impl Ini {
    /// Parses one file. `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, IniError> {
        let mut ini = Ini::default();
        ini.read(file, text)?;
        Ok(ini)
    }

    /// Sections written under the first name of a pair are the section of the second (in files
    /// read from now on, and in `${section:key}` references).
    pub fn with_aliases(mut self, aliases: &[(&str, &str)]) -> Self {
        self.aliases = aliases
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        self
    }

    fn canonical<'a>(&'a self, name: &'a str) -> &'a str {
        self.aliases
            .iter()
            .find(|(alias, _)| alias == name)
            .map_or(name, |(_, real)| real.as_str())
    }

    /// Reads another file over this one: its keys override key by key, its new sections are
    /// appended after the existing ones.
    pub fn read(&mut self, file: &str, text: &str) -> Result<(), IniError> {
        let file: Arc<str> = Arc::from(file);
        let parsed = parse_file(&file, text)?;
        for (name, entries) in parsed {
            let name = self.canonical(&name).to_owned();
            let target = if name == DEFAULT_SECTION {
                &mut self.defaults
            } else if let Some(pos) = self.sections.iter().position(|s| s.name == name) {
                &mut self.sections[pos]
            } else {
                self.sections.push(Section {
                    name,
                    entries: Vec::new(),
                });
                let last = self.sections.len() - 1;
                &mut self.sections[last]
            };
            for entry in entries {
                target.upsert(entry);
            }
        }
        Ok(())
    }

    /// Section names in order, without `[DEFAULT]`.
    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|s| s.name.as_str())
    }

    pub fn has_section(&self, section: &str) -> bool {
        self.section(section).is_some()
    }

    fn section(&self, section: &str) -> Option<&Section> {
        if section == DEFAULT_SECTION {
            return Some(&self.defaults);
        }
        let section = self.canonical(section);
        self.sections.iter().find(|s| s.name == section)
    }

    /// Keys visible in a section (its own, then the inherited defaults), lower-cased.
    pub fn keys(&self, section: &str) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        if let Some(s) = self.section(section) {
            keys.extend(s.entries.iter().map(|e| e.key.as_str()));
        }
        for e in &self.defaults.entries {
            if !keys.contains(&e.key.as_str()) {
                keys.push(e.key.as_str());
            }
        }
        keys
    }

    fn raw_entry(&self, section: &str, key: &str) -> Option<&Entry> {
        self.section(section)
            .and_then(|s| s.find(key))
            .or_else(|| self.defaults.find(key))
    }

    /// Where the value of `key` in `section` was written (its own or the inherited one).
    pub fn origin(&self, section: &str, key: &str) -> Option<&Origin> {
        self.raw_entry(section, &key.to_lowercase())
            .map(|e| &e.origin)
    }

    /// (section, key) pairs some value refers to: `${key}` in a section names that section's
    /// key (or the default it inherits), `${section:key}` another's. The es-loader's files keep
    /// helper keys read only this way. Keys lower-cased; `$$` is no reference.
    pub fn referenced_keys(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for section in std::iter::once(&self.defaults).chain(&self.sections) {
            for entry in &section.entries {
                let mut rest = entry.value.as_str();
                while let Some(p) = rest.find('$') {
                    rest = &rest[p + 1..];
                    if let Some(after) = rest.strip_prefix('$') {
                        rest = after;
                        continue;
                    }
                    let Some(body) = rest.strip_prefix('{') else {
                        continue;
                    };
                    let Some(end) = body.find('}') else { break };
                    let reference = &body[..end];
                    let here = if std::ptr::eq(section, &self.defaults) {
                        DEFAULT_SECTION
                    } else {
                        section.name.as_str()
                    };
                    let pair = match reference.split_once(':') {
                        Some((sec, key)) => (self.canonical(sec).to_owned(), key.to_lowercase()),
                        None => (here.to_owned(), reference.to_lowercase()),
                    };
                    if !out.contains(&pair) {
                        out.push(pair);
                    }
                    rest = &body[end..];
                }
            }
        }
        out
    }

    /// The value without interpolation.
    pub fn get_raw(&self, section: &str, key: &str) -> Option<&str> {
        self.raw_entry(section, &key.to_lowercase())
            .map(|e| e.value.as_str())
    }

    /// The value of `key` in `section` (or `[DEFAULT]`), with references resolved. `None` when
    /// neither has the key.
    pub fn get(&self, section: &str, key: &str) -> Result<Option<String>, IniError> {
        let key = key.to_lowercase();
        let Some(entry) = self.raw_entry(section, &key) else {
            return Ok(None);
        };
        let mut out = String::with_capacity(entry.value.len());
        self.interpolate(section, &key, entry, &entry.value, section, 1, &mut out)?;
        Ok(Some(out))
    }

    #[allow(clippy::too_many_arguments)]
    fn interpolate(
        &self,
        top_section: &str,
        top_key: &str,
        top_entry: &Entry,
        raw: &str,
        section: &str,
        depth: usize,
        out: &mut String,
    ) -> Result<(), IniError> {
        let fail = |reason: String| IniError::Interpolation {
            origin: top_entry.origin.clone(),
            section: top_section.to_owned(),
            key: top_key.to_owned(),
            reason,
        };
        if depth > MAX_DEPTH {
            return Err(fail(format!(
                "references nest more than {MAX_DEPTH} levels deep (a reference cycle?)"
            )));
        }
        let mut rest = raw;
        while let Some(p) = rest.find('$') {
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            match rest.as_bytes().get(1) {
                Some(b'$') => {
                    out.push('$');
                    rest = &rest[2..];
                }
                Some(b'{') => {
                    let Some(end) = rest.find('}').filter(|&end| end > 2) else {
                        return Err(fail(format!(
                            "bad reference `{rest}`: expected `${{key}}` or `${{section:key}}`"
                        )));
                    };
                    let path = &rest[2..end];
                    rest = &rest[end + 1..];
                    let parts: Vec<&str> = path.split(':').collect();
                    let (ref_section, ref_key) = match parts.as_slice() {
                        [key] => (section, key.to_lowercase()),
                        [sec, key] => (*sec, key.to_lowercase()),
                        _ => {
                            return Err(fail(format!(
                                "reference `${{{path}}}` has more than one `:`"
                            )));
                        }
                    };
                    let Some(entry) = (if ref_section == section || self.has_section(ref_section) {
                        self.raw_entry(ref_section, &ref_key)
                    } else {
                        None
                    }) else {
                        return Err(fail(format!(
                            "reference `${{{path}}}` names no existing key (looked for `{ref_key}` in [{ref_section}] and [DEFAULT])"
                        )));
                    };
                    if entry.value.contains('$') {
                        self.interpolate(
                            top_section,
                            top_key,
                            top_entry,
                            &entry.value,
                            ref_section,
                            depth + 1,
                            out,
                        )?;
                    } else {
                        out.push_str(&entry.value);
                    }
                }
                _ => {
                    return Err(fail(format!(
                        "`$` must be followed by `$` or `{{` (write `$$` for a literal `$`), found `{rest}`"
                    )));
                }
            }
        }
        out.push_str(rest);
        Ok(())
    }
}

type ParsedSection = (String, Vec<Entry>);

/// One file into sections and entries (values still raw).
fn parse_file(file: &Arc<str>, text: &str) -> Result<Vec<ParsedSection>, IniError> {
    let mut sections: Vec<ParsedSection> = Vec::new();
    // The value lines of the key being read, and the indent of its key line.
    let mut current: Option<usize> = None; // index into sections
    let mut open_key = false;
    let mut indent_level = usize::MAX;
    let mut pending: Vec<String> = Vec::new();

    let flush = |sections: &mut Vec<ParsedSection>,
                 current: Option<usize>,
                 pending: &mut Vec<String>,
                 open_key: bool| {
        if let (Some(idx), true) = (current, open_key)
            && let Some(entry) = sections[idx].1.last_mut()
        {
            entry.value = pending.join("\n").trim_end().to_owned();
        }
        pending.clear();
    };

    for (index, line) in text.lines().enumerate() {
        let lineno = index + 1;
        let stripped = line.trim();
        let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
        if stripped.is_empty() || is_comment {
            if stripped.is_empty() && open_key {
                // Blank lines belong to the value when more indented lines follow.
                pending.push(String::new());
            }
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if open_key && indent > indent_level {
            pending.push(stripped.to_owned());
            continue;
        }
        flush(&mut sections, current, &mut pending, open_key);
        open_key = false;
        indent_level = indent;

        if let Some(name) = section_header(stripped) {
            if sections.iter().any(|(n, _)| n == name) {
                return Err(IniError::DuplicateSection {
                    file: file.clone(),
                    line: lineno,
                    section: name.to_owned(),
                });
            }
            sections.push((name.to_owned(), Vec::new()));
            current = Some(sections.len() - 1);
            continue;
        }
        let Some(idx) = current else {
            return Err(IniError::MissingSectionHeader {
                file: file.clone(),
                line: lineno,
                text: stripped.to_owned(),
            });
        };
        let Some(split) = stripped.find(['=', ':']) else {
            return Err(IniError::Syntax {
                file: file.clone(),
                line: lineno,
                text: stripped.to_owned(),
            });
        };
        let key = stripped[..split].trim_end().to_lowercase();
        if key.is_empty() {
            return Err(IniError::Syntax {
                file: file.clone(),
                line: lineno,
                text: stripped.to_owned(),
            });
        }
        let (name, entries) = &mut sections[idx];
        if entries.iter().any(|e| e.key == key) {
            return Err(IniError::DuplicateKey {
                file: file.clone(),
                line: lineno,
                section: name.clone(),
                key,
            });
        }
        entries.push(Entry {
            key,
            value: String::new(),
            origin: Origin {
                file: file.clone(),
                line: lineno,
            },
        });
        pending.push(stripped[split + 1..].trim().to_owned());
        open_key = true;
    }
    flush(&mut sections, current, &mut pending, open_key);
    Ok(sections)
}

/// `[name]` → `name` (Python: `\[(?P<header>.+)\]` matched at the start of the stripped line).
fn section_header(stripped: &str) -> Option<&str> {
    let rest = stripped.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    (end > 0).then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ini(text: &str) -> Ini {
        Ini::parse("test.ini", text).expect("parses")
    }

    #[test]
    fn sections_keep_file_order_and_defaults_are_inherited() {
        let i = ini(
            "[DEFAULT]\nindex_rotation = monthly\n[b]\nx = 1\n[a]\nX: 2\nindex_rotation = daily\n",
        );
        assert_eq!(i.sections().collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(
            i.get("b", "index_rotation").expect("ok").as_deref(),
            Some("monthly")
        );
        assert_eq!(
            i.get("a", "index_rotation").expect("ok").as_deref(),
            Some("daily")
        );
        assert_eq!(i.get("a", "x").expect("ok").as_deref(), Some("2"));
        assert_eq!(i.get("a", "missing").expect("ok"), None);
    }

    #[test]
    fn first_equals_or_colon_splits_and_values_are_trimmed() {
        let i = ini("[s]\ns3_key = a=b:c  \nurl: http://x\n");
        assert_eq!(i.get("s", "s3_key").expect("ok").as_deref(), Some("a=b:c"));
        assert_eq!(i.get("s", "url").expect("ok").as_deref(), Some("http://x"));
    }

    #[test]
    fn multi_line_values_and_comments() {
        let text =
            "[s]\n# comment\n; another\necs = a\n   b\n\n   c\n\nnext = 1\n  # indented comment\n";
        let i = ini(text);
        assert_eq!(i.get("s", "ecs").expect("ok").as_deref(), Some("a\nb\n\nc"));
        assert_eq!(i.get("s", "next").expect("ok").as_deref(), Some("1"));
    }

    #[test]
    fn interpolation_same_section_other_section_default_and_dollar() {
        let text = "[DEFAULT]\nbase = log\n[one]\nsource.ip = srcaddr\nsource.address = ${source.ip}\nname = ${base}-x\nre = a$$\n[two]\ncopy = ${one:name}/${one:re}\n";
        let i = ini(text);
        assert_eq!(
            i.get("one", "source.address").expect("ok").as_deref(),
            Some("srcaddr")
        );
        assert_eq!(i.get("one", "name").expect("ok").as_deref(), Some("log-x"));
        assert_eq!(i.get("one", "re").expect("ok").as_deref(), Some("a$"));
        assert_eq!(
            i.get("two", "copy").expect("ok").as_deref(),
            Some("log-x/a$")
        );
    }

    #[test]
    fn interpolation_errors_name_file_line_section_and_key() {
        let i = ini("[s]\n\nbad = x$y\nmissing = ${nope}\ncycle = ${cycle}\n");
        let e = i.get("s", "bad").expect_err("fails").to_string();
        assert!(e.starts_with("test.ini:3: [s] bad:"), "{e}");
        let e = i.get("s", "missing").expect_err("fails").to_string();
        assert!(e.contains("test.ini:4") && e.contains("nope"), "{e}");
        let e = i.get("s", "cycle").expect_err("fails").to_string();
        assert!(e.contains("levels deep"), "{e}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = Ini::parse("u.ini", "[s]\nkey\n")
            .expect_err("fails")
            .to_string();
        assert_eq!(
            e,
            "u.ini:2: expected `key = value`, `key: value` or `[section]`, found `key`"
        );
        let e = Ini::parse("u.ini", "k = v\n")
            .expect_err("fails")
            .to_string();
        assert!(e.starts_with("u.ini:1:"), "{e}");
        let e = Ini::parse("u.ini", "[s]\nk=1\nK=2\n")
            .expect_err("fails")
            .to_string();
        assert!(e.contains("u.ini:3") && e.contains("`k`"), "{e}");
        let e = Ini::parse("u.ini", "[s]\n[s]\n")
            .expect_err("fails")
            .to_string();
        assert!(e.contains("u.ini:2"), "{e}");
    }

    #[test]
    fn a_later_file_overrides_key_by_key_and_appends_sections() {
        let mut i = ini("[a]\nx = 1\ny = 2\n[b]\nz = 3\n");
        i.read("user.ini", "[a]\ny = 20\n[c]\nw = 4\n")
            .expect("reads");
        assert_eq!(i.sections().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(i.get("a", "x").expect("ok").as_deref(), Some("1"));
        assert_eq!(i.get("a", "y").expect("ok").as_deref(), Some("20"));
        assert_eq!(
            i.origin("a", "y").map(ToString::to_string).as_deref(),
            Some("user.ini:2")
        );
    }

    #[test]
    fn references_resolve_against_overridden_values() {
        let mut i = ini("[a]\nbase = x\nderived = ${base}-y\n");
        i.read("user.ini", "[a]\nbase = z\n").expect("reads");
        assert_eq!(i.get("a", "derived").expect("ok").as_deref(), Some("z-y"));
    }
}
