//! The local index: an on-disk search index of the documents, for investigating without a
//! cluster (`loader load --index DIR`, then `loader search DIR QUERY`).
//!
//! Built on tantivy. Fields are typed as the OpenSearch templates type them ([`schema`]); a
//! document's `_id` is its key, so loading the same objects again replaces documents instead
//! of adding copies. Writes become visible, and durable, at a commit; the CLI commits at object
//! boundaries and lists an object as finished only once a commit covers it, so a run killed at
//! any point and rerun from its lists leaves every document exactly once. One process writes an
//! index at a time (tantivy's lock file): a second loader gets a clear error, and searches read
//! the last commit meanwhile. The query-string syntax is parsed in [`query`] and turned into
//! tantivy queries in [`translate`]; [`search`] runs them.

pub mod query;
pub mod schema;
pub mod search;
pub mod sink;
pub mod translate;

use schema::IndexSchema;
use std::path::{Path, PathBuf};
use tantivy::Index;
use tantivy::directory::MmapDirectory;

pub use sink::IndexSink;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{dir}: {reason}; nothing was written there")]
    Foreign { dir: String, reason: String },
    #[error(
        "{dir}: another loader is writing this index; wait for it to finish (searches work meanwhile)"
    )]
    Busy { dir: String },
    #[error("{dir}: {reason}")]
    Io { dir: String, reason: String },
    #[error("{dir}: the index cannot be read: {reason}")]
    Tantivy { dir: String, reason: String },
    #[error(transparent)]
    Query(#[from] query::QueryError),
    #[error(transparent)]
    Translate(#[from] translate::TranslateError),
}

/// The file tantivy keeps an index's segments and fields in.
const META: &str = "meta.json";

/// An index folder, opened.
pub struct LocalIndex {
    pub dir: PathBuf,
    pub index: Index,
    pub fields: IndexSchema,
}

impl LocalIndex {
    /// Opens the index in `dir`, or creates one in a missing or empty folder with the fields
    /// of `table`. A folder holding anything else is refused untouched.
    pub fn open_or_create(
        dir: &Path,
        table: &crate::content::fields::FieldTable,
    ) -> Result<Self, IndexError> {
        let name = dir.display().to_string();
        let io = |reason: String| IndexError::Io {
            dir: name.clone(),
            reason,
        };
        if dir.join(META).is_file() {
            return Self::open(dir, table.clone());
        }
        if dir.exists() {
            let mut entries =
                std::fs::read_dir(dir).map_err(|e| io(format!("cannot read the folder: {e}")))?;
            if entries.next().is_some() {
                return Err(IndexError::Foreign {
                    dir: name,
                    reason: "the folder is not empty and holds no index (no meta.json)".to_owned(),
                });
            }
        } else {
            std::fs::create_dir_all(dir).map_err(|e| io(format!("cannot create it: {e}")))?;
        }
        let fields = IndexSchema::build(table);
        let directory = MmapDirectory::open(dir).map_err(|e| io(e.to_string()))?;
        let index =
            Index::create(directory, fields.schema.clone(), Default::default()).map_err(|e| {
                IndexError::Tantivy {
                    dir: name.clone(),
                    reason: e.to_string(),
                }
            })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            index,
            fields,
        })
    }

    /// Opens an existing index (for searching).
    pub fn open(dir: &Path, table: crate::content::fields::FieldTable) -> Result<Self, IndexError> {
        let name = dir.display().to_string();
        if !dir.join(META).is_file() {
            return Err(IndexError::Foreign {
                dir: name,
                reason: if dir.exists() {
                    "no index here (no meta.json); load one with `loader load ... --index DIR`"
                        .to_owned()
                } else {
                    "no such folder".to_owned()
                },
            });
        }
        let index = Index::open_in_dir(dir).map_err(|e| IndexError::Foreign {
            dir: name.clone(),
            reason: format!("the index cannot be opened: {e}"),
        })?;
        let fields = IndexSchema::read(index.schema(), table).map_err(|e| IndexError::Foreign {
            dir: name.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            index,
            fields,
        })
    }
}

/// The field table an index is made with: the bundled components and every type's table
/// (a field two types declare with different types is left to `_rest`).
pub fn field_table(content: &crate::content::Content) -> crate::content::fields::FieldTable {
    let mut table = content.shared_fields().unwrap_or_default();
    for types in content.types.values() {
        for (name, kind) in types.iter() {
            let _ = table.insert(
                name,
                kind,
                crate::content::fields::Declared {
                    file: "types".to_owned(),
                    line: 0,
                },
            );
        }
    }
    table
}
