//! `loader verify`: proof that what the bucket holds is what the cluster holds.
//!
//! For each object the pipeline runs again, with the load's configuration and no delivery, to
//! learn the `_id`s of the documents the object yields ([`expected`]). The store (OpenSearch or
//! a local index, [`store`]) is asked for the documents whose `@log_s3key` is the object's key,
//! and the two sets are compared ([`ObjectCheck`]). Ids are deterministic, so a load repeated
//! adds nothing: a difference is a loss, a leftover, or a configuration that changed since.
//! Under the prefixes being verified, keys the store holds and no object explains are reported
//! as well. An id the object yields but the store holds under another object's key is an event
//! AWS delivered twice (the first object's document stands for both); it counts as found.

pub mod expected;
pub mod store;

use std::collections::HashSet;
use std::fmt::Write as _;

pub use expected::ExpectedSink;
pub use store::{DocumentStore, LocalIndexStore, OpenSearchStore, StoreError};

/// At most this many ids are named per object and kind of difference.
pub const SAMPLE: usize = 5;

/// How the documents of one object compare.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectCheck {
    /// The object as users name it (`s3://bucket/key` or a path).
    pub object: String,
    /// Its key, as `@log_s3key` holds it.
    pub key: String,
    /// Documents the object yields.
    pub expected: u64,
    /// Of those, documents the store holds under the object's key.
    pub found: u64,
    /// Of those, documents the store holds under another object's key.
    pub elsewhere: u64,
    /// Documents the object yields that the store does not hold.
    pub missing: u64,
    pub missing_sample: Vec<String>,
    /// Documents under the object's key that the object does not yield.
    pub extra: u64,
    pub extra_sample: Vec<String>,
}

/// What [`ObjectCheck::verdict`] concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Complete,
    /// None of its documents is in the store.
    Missing,
    /// Some of its documents are not.
    Partial,
    /// All its documents are there, and others under its key too.
    Extra,
}

impl ObjectCheck {
    /// Compares the ids an object yields with the ids stored under its key. The ids still
    /// missing afterwards are those [`ObjectCheck::missing_ids`] returns; the caller looks them
    /// up elsewhere and calls [`ObjectCheck::found_elsewhere`].
    pub fn compare(
        object: &str,
        key: &str,
        expected: &HashSet<String>,
        stored: &HashSet<String>,
    ) -> (Self, Vec<String>) {
        let mut missing: Vec<String> = expected.difference(stored).cloned().collect();
        missing.sort_unstable();
        let mut extra: Vec<&String> = stored.difference(expected).collect();
        extra.sort_unstable();
        let check = Self {
            object: object.to_owned(),
            key: key.to_owned(),
            expected: expected.len() as u64,
            found: (expected.len() - missing.len()) as u64,
            elsewhere: 0,
            missing: missing.len() as u64,
            missing_sample: missing.iter().take(SAMPLE).cloned().collect(),
            extra: extra.len() as u64,
            extra_sample: extra.into_iter().take(SAMPLE).cloned().collect(),
        };
        (check, missing)
    }

    /// Counts the missing ids the store holds under other keys as found there.
    pub fn found_elsewhere(&mut self, missing: &[String], elsewhere: &HashSet<String>) {
        let still: Vec<&String> = missing
            .iter()
            .filter(|id| !elsewhere.contains(*id))
            .collect();
        self.elsewhere = (missing.len() - still.len()) as u64;
        self.missing = still.len() as u64;
        self.missing_sample = still.into_iter().take(SAMPLE).cloned().collect();
    }

    pub fn verdict(&self) -> Verdict {
        if self.missing == 0 && self.extra == 0 {
            Verdict::Complete
        } else if self.missing > 0 && self.found + self.elsewhere == 0 {
            Verdict::Missing
        } else if self.missing > 0 {
            Verdict::Partial
        } else {
            Verdict::Extra
        }
    }

    /// The line printed for an object that does not match.
    fn line(&self) -> String {
        let mut s = match self.verdict() {
            Verdict::Complete => format!("complete    {}", self.object),
            Verdict::Missing => format!(
                "missing     {}: none of its {} documents is loaded",
                self.object, self.expected
            ),
            Verdict::Partial => format!(
                "partial     {}: {} of {} documents loaded, {} missing",
                self.object,
                self.found + self.elsewhere,
                self.expected,
                self.missing
            ),
            Verdict::Extra => format!(
                "extra       {}: all {} documents loaded",
                self.object, self.expected
            ),
        };
        if self.missing > 0 {
            let _ = write!(s, " (e.g. _id {})", self.missing_sample.join(", "));
        }
        if self.extra > 0 {
            let _ = write!(
                s,
                "; {} document(s) under its key that it does not yield (e.g. _id {})",
                self.extra,
                self.extra_sample.join(", ")
            );
        }
        s
    }
}

/// What a verification found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Objects whose documents do not match, in the order they were checked.
    pub differences: Vec<ObjectCheck>,
    pub complete: u64,
    pub missing: u64,
    pub partial: u64,
    pub extra: u64,
    /// Objects that could not be read or checked, with the reason.
    pub unreadable: Vec<(String, String)>,
    /// Objects of no log type (the load skips them too).
    pub skipped: u64,
    /// Documents the objects yield, and how many of them the store holds.
    pub documents_expected: u64,
    pub documents_found: u64,
    /// Of those found, documents held under another object's key.
    pub documents_elsewhere: u64,
    /// Keys under a prefix verified that no object explains, with their document counts.
    pub unexplained: Vec<(String, u64)>,
    /// Problems that name no object (bad list lines, listing errors).
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn add(&mut self, check: ObjectCheck) {
        self.documents_expected += check.expected;
        self.documents_found += check.found + check.elsewhere;
        self.documents_elsewhere += check.elsewhere;
        match check.verdict() {
            Verdict::Complete => self.complete += 1,
            Verdict::Missing => self.missing += 1,
            Verdict::Partial => self.partial += 1,
            Verdict::Extra => self.extra += 1,
        }
        if check.verdict() != Verdict::Complete {
            self.differences.push(check);
        }
    }

    /// Every object's documents are in the store, and nothing else is under its keys.
    pub fn success(&self) -> bool {
        self.differences.is_empty()
            && self.unreadable.is_empty()
            && self.unexplained.is_empty()
            && self.problems.is_empty()
    }

    pub fn objects(&self) -> u64 {
        self.complete + self.missing + self.partial + self.extra + self.unreadable.len() as u64
    }

    /// One line per difference, then the totals.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for check in &self.differences {
            s.push_str(&check.line());
            s.push('\n');
        }
        for (object, reason) in &self.unreadable {
            let _ = writeln!(s, "unreadable  {object}: {reason}");
        }
        for (key, count) in &self.unexplained {
            let _ = writeln!(
                s,
                "unexplained {key}: {count} document(s) under this key, and no object named yields them"
            );
        }
        for problem in &self.problems {
            let _ = writeln!(s, "problem     {problem}");
        }
        let _ = writeln!(
            s,
            "objects: {} checked, {} complete, {} missing, {} partial, {} with extra documents, {} unreadable, {} of no log type",
            self.objects(),
            self.complete,
            self.missing,
            self.partial,
            self.extra,
            self.unreadable.len(),
            self.skipped
        );
        let _ = write!(
            s,
            "documents: {} expected, {} found",
            self.documents_expected, self.documents_found
        );
        if self.documents_elsewhere > 0 {
            let _ = write!(
                s,
                " ({} of them under another object's key: events delivered twice)",
                self.documents_elsewhere
            );
        }
        let unexplained: u64 = self.unexplained.iter().map(|(_, n)| n).sum();
        let _ = writeln!(
            s,
            "; {} unexplained document(s) under {} key(s)",
            unexplained,
            self.unexplained.len()
        );
        s.push_str(if self.success() {
            "verified: every object's documents are loaded, once\n"
        } else {
            "NOT verified: see the lines above\n"
        });
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_object_whose_documents_are_all_there_is_complete() {
        let (check, missing) = ObjectCheck::compare("o", "k", &set(&["a", "b"]), &set(&["b", "a"]));
        assert!(missing.is_empty());
        assert_eq!(check.verdict(), Verdict::Complete);
        assert_eq!((check.expected, check.found), (2, 2));
    }

    #[test]
    fn nothing_stored_is_missing_some_stored_is_partial() {
        let (check, missing) = ObjectCheck::compare("o", "k", &set(&["a", "b"]), &set(&[]));
        assert_eq!(check.verdict(), Verdict::Missing);
        assert_eq!(missing, vec!["a", "b"]);
        let (check, _) = ObjectCheck::compare("o", "k", &set(&["a", "b", "c"]), &set(&["b"]));
        assert_eq!(check.verdict(), Verdict::Partial);
        assert_eq!(check.missing_sample, vec!["a", "c"]);
        assert!(
            check
                .line()
                .contains("1 of 3 documents loaded, 2 missing (e.g. _id a, c)")
        );
    }

    #[test]
    fn ids_held_under_another_key_count_as_found() {
        let (mut check, missing) = ObjectCheck::compare("o", "k", &set(&["a", "b"]), &set(&[]));
        check.found_elsewhere(&missing, &set(&["a", "b"]));
        assert_eq!(check.verdict(), Verdict::Complete);
        assert_eq!(check.elsewhere, 2);
        let (mut check, missing) = ObjectCheck::compare("o", "k", &set(&["a", "b"]), &set(&[]));
        check.found_elsewhere(&missing, &set(&["a"]));
        assert_eq!(check.verdict(), Verdict::Partial);
        assert_eq!(check.missing_sample, vec!["b"]);
    }

    #[test]
    fn documents_the_object_does_not_yield_are_extra() {
        let (check, _) = ObjectCheck::compare("o", "k", &set(&["a"]), &set(&["a", "z"]));
        assert_eq!(check.verdict(), Verdict::Extra);
        assert!(
            check
                .line()
                .contains("1 document(s) under its key that it does not yield (e.g. _id z)")
        );
    }

    #[test]
    fn the_report_succeeds_only_when_everything_matches() {
        let mut report = VerifyReport::default();
        report.add(ObjectCheck::compare("o", "k", &set(&["a"]), &set(&["a"])).0);
        assert!(report.success(), "{}", report.text());
        report.unexplained.push(("k2".into(), 3));
        assert!(!report.success());
        assert!(report.text().contains("unexplained k2: 3 document(s)"));
        let mut report = VerifyReport::default();
        report.add(ObjectCheck::compare("o", "k", &set(&["a"]), &set(&[])).0);
        assert!(!report.success());
        assert!(
            report
                .text()
                .contains("objects: 1 checked, 0 complete, 1 missing")
        );
    }
}
