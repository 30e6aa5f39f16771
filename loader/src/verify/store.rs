//! Where loaded documents are looked for: an OpenSearch cluster or a local index. Both answer
//! three questions: the ids under one `@log_s3key`, where given ids are, and which keys lie
//! under a prefix (with their document counts).
//!
//! OpenSearch is read within one point in time (so documents loaded meanwhile do not move the
//! pages), with `search_after` paging by `_id` and composite aggregations over `@log_s3key`:
//! no answer is larger than a page, whatever the cluster holds. A cluster without point in time
//! (before OpenSearch 2.4) is read the same way without it.

use crate::index::LocalIndex;
use crate::index::schema::Kind;
use crate::setup::Http;
use futures::future::BoxFuture;
use opensearch::http::Method;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};
use tantivy::collector::{Count, DocSetCollector};
use tantivy::query::{TermQuery, TermSetQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::schema::document::Value as _;
use tantivy::{TantivyDocument, Term};

/// The field every document names its object by.
pub const KEY_FIELD: &str = "@log_s3key";

/// Hits and buckets per request.
const PAGE: usize = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("OpenSearch {what}: {reason}")]
    OpenSearch { what: String, reason: String },
    #[error("the local index {dir}: {reason}")]
    Index { dir: String, reason: String },
}

/// Answers what verification asks of the place documents were loaded to.
pub trait DocumentStore: Send + Sync {
    /// The ids of the documents whose `@log_s3key` is `key`.
    fn ids_of<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<HashSet<String>, StoreError>>;

    /// Which of `ids` the store holds (under any key).
    fn held<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<HashSet<String>, StoreError>>;

    /// The keys starting with `prefix`, with their document counts, in key order.
    fn keys_under<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, u64)>, StoreError>>;

    /// Lets go of what the store holds open for the reads.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The documents of an OpenSearch cluster, in the indices of one pattern (`log-*`).
pub struct OpenSearchStore<H> {
    http: H,
    pattern: String,
    /// The point in time every search reads, when the cluster has them.
    pit: Option<String>,
    /// `@log_s3key`, or its `.keyword` in indices made without the loader's templates.
    key_field: String,
    /// Hits or buckets per request.
    page: usize,
}

const KEEP_ALIVE: &str = "10m";

impl<H: Http> OpenSearchStore<H> {
    /// Finds how the indices of `pattern` map `@log_s3key` and opens a point in time over
    /// them; a cluster that has none (or no index of the pattern yet) is read without.
    pub async fn open(http: H, pattern: &str) -> Result<Self, StoreError> {
        let key_field = Self::key_field(&http, pattern).await?;
        let path = format!("/{pattern}/_search/point_in_time");
        let pit = match http
            .request(Method::Post, &path, &[("keep_alive", KEEP_ALIVE)], None)
            .await
        {
            Ok(reply) if reply.status == 200 => serde_json::from_slice::<Value>(&reply.body)
                .ok()
                .and_then(|v| v["pit_id"].as_str().map(str::to_owned)),
            Ok(reply) => {
                tracing::info!(
                    status = reply.status,
                    answer = %String::from_utf8_lossy(&reply.body[..reply.body.len().min(300)]),
                    "no point in time over {pattern}: reading without one"
                );
                None
            }
            Err(e) => {
                tracing::info!(error = %e, "no point in time over {pattern}: reading without one");
                None
            }
        };
        Ok(Self {
            http,
            pattern: pattern.to_owned(),
            pit,
            key_field,
            page: PAGE,
        })
    }

    /// Pages of `page` hits or buckets instead of 5,000 (to see paging work on few documents).
    pub fn with_page_size(mut self, page: usize) -> Self {
        self.page = page.max(1);
        self
    }

    /// Whether the reads share a point in time.
    pub fn has_point_in_time(&self) -> bool {
        self.pit.is_some()
    }

    /// The field to match keys on: indices made by `loader setup` map `@log_s3key` as a
    /// keyword; dynamic mapping makes it text with a `.keyword` below. Indices that differ
    /// cannot be read with one query, so they are named.
    async fn key_field(http: &H, pattern: &str) -> Result<String, StoreError> {
        let failed = |reason: String| StoreError::OpenSearch {
            what: format!("the mapping of {KEY_FIELD} in {pattern}"),
            reason,
        };
        let path = format!("/{pattern}/_mapping/field/{KEY_FIELD}");
        let what = format!("the mapping of {KEY_FIELD} in {pattern}");
        let query = [("allow_no_indices", "true")];
        let Some(answer) = ask(http, Method::Get, &path, &query, None, &what).await? else {
            return Ok(KEY_FIELD.to_owned());
        };
        let mut fields: HashMap<String, Vec<String>> = HashMap::new();
        for (index, mapping) in answer.as_object().into_iter().flatten() {
            let field = &mapping["mappings"][KEY_FIELD]["mapping"][KEY_FIELD];
            let name = match field["type"].as_str() {
                Some("keyword") => KEY_FIELD.to_owned(),
                _ if field["fields"]["keyword"]["type"] == "keyword" => {
                    format!("{KEY_FIELD}.keyword")
                }
                None => continue,
                Some(other) => {
                    return Err(failed(format!(
                        "{index} maps it as {other}, with no keyword to match keys on; load into indices made by `loader setup`"
                    )));
                }
            };
            fields.entry(name).or_default().push(index.clone());
        }
        match fields.len() {
            0 => Ok(KEY_FIELD.to_owned()),
            1 => Ok(fields
                .into_keys()
                .next()
                .unwrap_or_else(|| KEY_FIELD.to_owned())),
            _ => {
                let mut named: Vec<String> = fields
                    .iter()
                    .map(|(field, indices)| format!("{field} in {}", indices.join(", ")))
                    .collect();
                named.sort();
                Err(failed(format!(
                    "the indices differ ({}); verify one kind at a time with --index-pattern",
                    named.join("; ")
                )))
            }
        }
    }

    /// One search: within the point in time, or over the pattern.
    async fn search(&self, what: &str, mut body: Value) -> Result<Value, StoreError> {
        // A point in time names its indices already: no options about them with it.
        let (path, query): (String, &[(&str, &str)]) = match &self.pit {
            Some(pit) => {
                body["pit"] = json!({ "id": pit, "keep_alive": KEEP_ALIVE });
                ("/_search".to_owned(), &[])
            }
            None => (
                format!("/{}/_search", self.pattern),
                &[("ignore_unavailable", "true"), ("allow_no_indices", "true")],
            ),
        };
        let answer = ask(&self.http, Method::Post, &path, query, Some(body), what)
            .await?
            .ok_or_else(|| StoreError::OpenSearch {
                what: what.to_owned(),
                reason: "not found (the point in time expired?)".to_owned(),
            })?;
        if answer["_shards"]["failed"].as_u64().unwrap_or(0) > 0 {
            return Err(StoreError::OpenSearch {
                what: what.to_owned(),
                reason: format!("shards failed: {}", answer["_shards"]["failures"]),
            });
        }
        Ok(answer)
    }

    /// Every hit of `query`, `_id` order, a page at a time.
    async fn all_hits(
        &self,
        what: &str,
        query: Value,
        source: Value,
    ) -> Result<Vec<Value>, StoreError> {
        let mut hits = Vec::new();
        let mut after: Option<Value> = None;
        loop {
            let mut body = json!({
                "size": self.page,
                "_source": source,
                "track_total_hits": false,
                "query": query,
                "sort": [{ "_id": "asc" }],
            });
            if let Some(after) = after.take() {
                body["search_after"] = after;
            }
            let answer = self.search(what, body).await?;
            let page = answer["hits"]["hits"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let full = page.len() >= self.page;
            after = page.last().map(|h| h["sort"].clone());
            hits.extend(page);
            if !full || after.is_none() {
                return Ok(hits);
            }
        }
    }
}

/// One request: the JSON of a 200 answer, `None` for a 404; any other answer, or none, is an
/// error naming `what`.
async fn ask<H: Http>(
    http: &H,
    method: Method,
    path: &str,
    query: &[(&str, &str)],
    body: Option<Value>,
    what: &str,
) -> Result<Option<Value>, StoreError> {
    let failed = |reason: String| StoreError::OpenSearch {
        what: what.to_owned(),
        reason,
    };
    let reply = http
        .request(
            method,
            path,
            query,
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
        .map_err(|e| failed(e.to_string()))?;
    match reply.status {
        200 => serde_json::from_slice(&reply.body)
            .map(Some)
            .map_err(|e| failed(format!("answer: {e}"))),
        404 => Ok(None),
        status => Err(failed(crate::setup::answers::reason(status, &reply.body))),
    }
}

impl<H: Http> DocumentStore for OpenSearchStore<H> {
    fn ids_of<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<HashSet<String>, StoreError>> {
        Box::pin(async move {
            let hits = self
                .all_hits(
                    &format!("documents of {key}"),
                    json!({ "term": { self.key_field.as_str(): key } }),
                    json!(false),
                )
                .await?;
            Ok(hits
                .iter()
                .filter_map(|h| h["_id"].as_str().map(str::to_owned))
                .collect())
        })
    }

    fn held<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<HashSet<String>, StoreError>> {
        Box::pin(async move {
            let mut held = HashSet::new();
            for chunk in ids.chunks(self.page) {
                let hits = self
                    .all_hits(
                        "documents by _id",
                        json!({ "ids": { "values": chunk } }),
                        json!(false),
                    )
                    .await?;
                held.extend(
                    hits.iter()
                        .filter_map(|h| h["_id"].as_str().map(str::to_owned)),
                );
            }
            Ok(held)
        })
    }

    fn keys_under<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, u64)>, StoreError>> {
        Box::pin(async move {
            let query = if prefix.is_empty() {
                json!({ "match_all": {} })
            } else {
                json!({ "prefix": { self.key_field.as_str(): prefix } })
            };
            let what = format!("keys under {prefix:?}");
            let mut keys = Vec::new();
            let mut after: Option<Value> = None;
            loop {
                let mut composite = json!({
                    "size": self.page,
                    "sources": [{ "key": { "terms": { "field": self.key_field } } }],
                });
                if let Some(after) = after.take() {
                    composite["after"] = after;
                }
                let body = json!({
                    "size": 0,
                    "track_total_hits": false,
                    "query": query,
                    "aggs": { "keys": { "composite": composite } },
                });
                let answer = self.search(&what, body).await?;
                let agg = &answer["aggregations"]["keys"];
                let buckets = agg["buckets"].as_array().cloned().unwrap_or_default();
                for b in &buckets {
                    if let (Some(key), Some(n)) =
                        (b["key"]["key"].as_str(), b["doc_count"].as_u64())
                    {
                        keys.push((key.to_owned(), n));
                    }
                }
                match agg.get("after_key") {
                    Some(next) if buckets.len() >= self.page => after = Some(next.clone()),
                    _ => return Ok(keys),
                }
            }
        })
    }

    /// Closes the point in time (it would expire by itself).
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(pit) = &self.pit {
                let body = json!({ "pit_id": [pit] }).to_string().into_bytes();
                let _ = self
                    .http
                    .request(Method::Delete, "/_search/point_in_time", &[], Some(body))
                    .await;
            }
        })
    }
}

/// The documents of a local index (`loader load --index DIR`), at its last commit.
pub struct LocalIndexStore {
    index: LocalIndex,
    reader: tantivy::IndexReader,
}

impl LocalIndexStore {
    pub fn new(index: LocalIndex) -> Result<Self, StoreError> {
        let reader = index.index.reader().map_err(|e| Self::error(&index, e))?;
        Ok(Self { index, reader })
    }

    fn error(index: &LocalIndex, e: impl std::fmt::Display) -> StoreError {
        StoreError::Index {
            dir: index.dir.display().to_string(),
            reason: e.to_string(),
        }
    }

    fn key_field(&self) -> Result<tantivy::schema::Field, StoreError> {
        match self.index.fields.declared(KEY_FIELD) {
            Some((field, Kind::Keyword)) => Ok(field),
            _ => Err(Self::error(
                &self.index,
                format!("it has no keyword field `{KEY_FIELD}`"),
            )),
        }
    }

    /// The stored `_id` of every document matching `query`.
    fn ids_matching(
        &self,
        query: &dyn tantivy::query::Query,
    ) -> Result<HashSet<String>, StoreError> {
        let searcher = self.reader.searcher();
        let found = searcher
            .search(query, &DocSetCollector)
            .map_err(|e| Self::error(&self.index, e))?;
        let mut ids = HashSet::with_capacity(found.len());
        for address in found {
            let doc: TantivyDocument = searcher
                .doc(address)
                .map_err(|e| Self::error(&self.index, e))?;
            if let Some(id) = doc.get_first(self.index.fields.id).and_then(|v| v.as_str()) {
                ids.insert(id.to_owned());
            }
        }
        Ok(ids)
    }
}

impl DocumentStore for LocalIndexStore {
    fn ids_of<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<HashSet<String>, StoreError>> {
        Box::pin(async move {
            let term = Term::from_field_text(self.key_field()?, key);
            self.ids_matching(&TermQuery::new(term, IndexRecordOption::Basic))
        })
    }

    fn held<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<HashSet<String>, StoreError>> {
        Box::pin(async move {
            let field = self.index.fields.id;
            let terms = ids.iter().map(|id| Term::from_field_text(field, id));
            self.ids_matching(&TermSetQuery::new(terms))
        })
    }

    fn keys_under<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, u64)>, StoreError>> {
        Box::pin(async move {
            let field = self.key_field()?;
            let searcher = self.reader.searcher();
            // The term dictionaries name every key; deleted documents (replaced by a later
            // load) still count there, so each key is counted by a search.
            let mut keys = BTreeSet::new();
            for segment in searcher.segment_readers() {
                let inverted = segment
                    .inverted_index(field)
                    .map_err(|e| Self::error(&self.index, e))?;
                let mut terms = inverted
                    .terms()
                    .range()
                    .ge(prefix.as_bytes())
                    .into_stream()
                    .map_err(|e| Self::error(&self.index, e))?;
                while terms.advance() {
                    let key = terms.key();
                    if !key.starts_with(prefix.as_bytes()) {
                        break;
                    }
                    keys.insert(String::from_utf8_lossy(key).into_owned());
                }
            }
            let mut counted = HashMap::new();
            for key in &keys {
                let term = Term::from_field_text(field, key);
                let n = searcher
                    .search(&TermQuery::new(term, IndexRecordOption::Basic), &Count)
                    .map_err(|e| Self::error(&self.index, e))?;
                if n > 0 {
                    counted.insert(key.clone(), n as u64);
                }
            }
            Ok(keys
                .into_iter()
                .filter_map(|k| counted.get(&k).map(|n| (k.clone(), *n)))
                .collect())
        })
    }
}
