//! Runs a query on the local index: matching documents newest first, a page at a time, their
//! count, or the most frequent values of one field (for triage).

use super::schema::{Kind, REST, SOURCE, TIMESTAMP};
use super::{IndexError, LocalIndex, query, translate};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::ops::Bound;
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::{AggContextParams, AggregationCollector};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery};
use tantivy::schema::document::Value as _;
use tantivy::{Order, TantivyDocument, Term};

/// What to search.
#[derive(Debug, Clone)]
pub struct Request {
    /// The query string (OpenSearch Dashboards' Lucene syntax).
    pub query: String,
    /// Only documents from / until these times (`@timestamp`).
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Documents per page, or values for `top`.
    pub size: usize,
    /// 1-based page of documents.
    pub page: usize,
    /// Count the values of this field instead of listing documents.
    pub top: Option<String>,
    /// The time `now` means in the query.
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    pub index: String,
    pub source: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Documents matching (all pages).
    pub total: usize,
    /// The page asked for, newest first.
    pub hits: Vec<Hit>,
    /// With `top`: values and their document counts, most frequent first.
    pub top: Vec<(String, u64)>,
}

fn failed(index: &LocalIndex, e: impl std::fmt::Display) -> IndexError {
    IndexError::Tantivy {
        dir: index.dir.display().to_string(),
        reason: e.to_string(),
    }
}

pub fn search(index: &LocalIndex, request: &Request) -> Result<Found, IndexError> {
    let node = query::parse(&request.query)?;
    let target = translate::Target {
        schema: &index.fields,
        tokenizers: index.index.tokenizers(),
        now: request.now,
    };
    let mut query = target.query(&node)?;
    if request.from.is_some() || request.to.is_some() {
        let field = index.fields.timestamp;
        let bound = |t: Option<DateTime<Utc>>| match t {
            Some(t) => Bound::Included(Term::from_field_date_for_search(
                field,
                tantivy::DateTime::from_timestamp_millis(t.timestamp_millis()),
            )),
            None => Bound::Unbounded,
        };
        let window: Box<dyn Query> =
            Box::new(RangeQuery::new(bound(request.from), bound(request.to)));
        query = Box::new(BooleanQuery::new(vec![
            (Occur::Must, query),
            (Occur::Must, window),
        ]));
    }
    let reader = index.index.reader().map_err(|e| failed(index, e))?;
    let searcher = reader.searcher();
    let total = searcher
        .search(&query, &Count)
        .map_err(|e| failed(index, e))?;
    if let Some(field) = &request.top {
        let top = top_values(index, &searcher, &*query, field, request.size)?;
        return Ok(Found {
            total,
            hits: Vec::new(),
            top,
        });
    }
    let size = request.size.max(1);
    let offset = request.page.saturating_sub(1).saturating_mul(size);
    let collector = TopDocs::with_limit(size)
        .and_offset(offset)
        .order_by_fast_field::<tantivy::DateTime>(TIMESTAMP, Order::Desc);
    let page = searcher
        .search(&query, &collector)
        .map_err(|e| failed(index, e))?;
    let mut hits = Vec::with_capacity(page.len());
    for (_, address) in page {
        let doc: TantivyDocument = searcher.doc(address).map_err(|e| failed(index, e))?;
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let source = serde_json::from_str(&text(index.fields.source)).unwrap_or(Value::Null);
        hits.push(Hit {
            id: text(index.fields.id),
            index: text(index.fields.index),
            source,
        });
    }
    Ok(Found {
        total,
        hits,
        top: Vec::new(),
    })
}

/// The `size` most frequent values of `field` in the matching documents.
fn top_values(
    index: &LocalIndex,
    searcher: &tantivy::Searcher,
    query: &dyn Query,
    field: &str,
    size: usize,
) -> Result<Vec<(String, u64)>, IndexError> {
    let column = match index.fields.declared(field) {
        Some((_, Kind::Text)) => {
            return Err(IndexError::Translate(translate::TranslateError(format!(
                "`--top {field}`: a text field's values are words; count a keyword field"
            ))));
        }
        Some(_) => field.to_owned(),
        None if field == TIMESTAMP || field == SOURCE => field.to_owned(),
        None => format!("{REST}.{field}"),
    };
    let aggs: Aggregations = serde_json::from_value(json!({
        "top": {"terms": {"field": column, "size": size.max(1)}}
    }))
    .map_err(|e| failed(index, e))?;
    let collector = AggregationCollector::from_aggs(
        aggs,
        AggContextParams::new(Default::default(), index.index.tokenizers().clone()),
    );
    let results = searcher
        .search(query, &collector)
        .map_err(|e| failed(index, e))?;
    let value = serde_json::to_value(&results).map_err(|e| failed(index, e))?;
    let buckets = value["top"]["buckets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(buckets
        .into_iter()
        .filter_map(|b| {
            let key = match &b["key_as_string"] {
                Value::String(s) => s.clone(),
                _ => match &b["key"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            };
            Some((key, b["doc_count"].as_u64()?))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::DocumentSink;
    use crate::index::IndexSink;
    use crate::sink::{BulkItem, Origin};

    fn docs() -> Vec<Value> {
        vec![
            json!({"@timestamp": "2026-03-01T10:00:00.000Z", "eventName": "StopLogging",
                   "event": {"action": "StopLogging", "outcome": "success"},
                   "source": {"ip": "203.0.113.5", "port": 443}, "user": {"name": "alice"},
                   "requestParameters": {"name": "org-trail"}, "message": "Trail stopped by alice"}),
            json!({"@timestamp": "2026-03-02T10:00:00.000Z", "eventName": "ConsoleLogin",
                   "event": {"action": "ConsoleLogin", "outcome": "failure"},
                   "source": {"ip": "10.1.2.3", "port": 5000}, "user": {"name": "bob"},
                   "message": "Failed password for bob"}),
            json!({"@timestamp": "2026-03-03T10:00:00.000Z", "eventName": "GetObject",
                   "event": {"action": "GetObject"}, "source": {"ip": "2001:db8::7"},
                   "user": {"name": "alice"}, "tags": ["read"], "n": 7}),
        ]
    }

    fn index() -> (tempfile::TempDir, LocalIndex) {
        let dir = tempfile::tempdir().expect("tempdir");
        let content = crate::content::Content::bundled().expect("content");
        let index = LocalIndex::open_or_create(
            &dir.path().join("idx"),
            &crate::index::field_table(&content),
        )
        .expect("index");
        let sink = IndexSink::new(&index).expect("writer");
        let items: Vec<BulkItem> = docs()
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                BulkItem::new(
                    "log-test-2026-03",
                    format!("id-{i}"),
                    d.to_string().into_bytes(),
                    Origin::new("o", i as u64),
                )
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            // Twice: the same ids replace, never add.
            for _ in 0..2 {
                let out = sink.write(items.clone()).await;
                assert!(out.is_complete(), "{:?}", out.failures);
                sink.commit().await.expect("commit");
            }
        });
        sink.close().expect("close");
        (dir, index)
    }

    fn ids(index: &LocalIndex, query: &str) -> Vec<String> {
        let found = search(
            index,
            &Request {
                query: query.to_owned(),
                from: None,
                to: None,
                size: 10,
                page: 1,
                top: None,
                now: DateTime::parse_from_rfc3339("2026-03-04T00:00:00Z")
                    .expect("now")
                    .with_timezone(&Utc),
            },
        )
        .unwrap_or_else(|e| panic!("{query}: {e}"));
        let mut ids: Vec<String> = found.hits.into_iter().map(|h| h.id).collect();
        ids.sort();
        ids
    }

    #[test]
    fn the_query_syntax_finds_what_opensearch_would() {
        let (_dir, index) = index();
        let cases: &[(&str, &[&str])] = &[
            ("*", &["id-0", "id-1", "id-2"]),
            ("eventName:StopLogging", &["id-0"]),
            (
                "event.action:ConsoleLogin OR eventName:StopLogging",
                &["id-0", "id-1"],
            ),
            ("user.name:alice AND NOT eventName:GetObject", &["id-0"]),
            ("source.ip:10.0.0.0/8", &["id-1"]),
            (r"source.ip:203.0.113.0\/24", &["id-0"]),
            ("source.ip:\"2001:db8::/32\"", &["id-2"]),
            ("source.ip:203.0.113.5", &["id-0"]),
            ("source.port:[400 TO 1000]", &["id-0"]),
            ("source.port:>=1000", &["id-1"]),
            ("event.action:Stop*", &["id-0"]),
            ("event.action:/Get.*/", &["id-2"]),
            ("message:failed", &["id-1"]),
            ("message:\"stopped by alice\"", &["id-0"]),
            ("_exists_:requestParameters.name", &["id-0"]),
            ("_exists_:event.outcome", &["id-0", "id-1"]),
            ("requestParameters.name:org-trail", &["id-0"]),
            ("requestParameters.name:org-*", &["id-0"]),
            ("n:[5 TO 9]", &["id-2"]),
            ("n:7", &["id-2"]),
            ("tags:read", &["id-2"]),
            ("StopLogging", &["id-0"]),
            ("alice", &["id-0", "id-2"]),
            ("@timestamp:[2026-03-02 TO *]", &["id-1", "id-2"]),
            ("@timestamp:2026-03-02", &["id-1"]),
            ("@timestamp:>now-2d", &["id-1", "id-2"]),
            (
                "(eventName:GetObject OR eventName:ConsoleLogin) AND user.name:bob",
                &["id-1"],
            ),
            ("NOT user.name:alice", &["id-1"]),
            ("-user.name:alice", &["id-1"]),
        ];
        for (query, expected) in cases {
            assert_eq!(ids(&index, query), *expected, "{query}");
        }
    }

    #[test]
    fn newest_first_paged_and_top_values() {
        let (_dir, index) = index();
        let request = |page, top: Option<&str>| Request {
            query: "*".into(),
            from: None,
            to: None,
            size: 2,
            page,
            top: top.map(str::to_owned),
            now: Utc::now(),
        };
        let first = search(&index, &request(1, None)).expect("page 1");
        assert_eq!(first.total, 3);
        let order: Vec<&str> = first.hits.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(order, ["id-2", "id-1"]);
        assert_eq!(first.hits[0].source["eventName"], "GetObject");
        let second = search(&index, &request(2, None)).expect("page 2");
        assert_eq!(second.hits.len(), 1);
        let top = search(&index, &request(1, Some("user.name"))).expect("top");
        assert_eq!(top.top, [("alice".to_owned(), 2), ("bob".to_owned(), 1)]);
        let top =
            search(&index, &request(1, Some("eventName"))).expect("top of an undeclared field");
        assert_eq!(top.top.len(), 2);
        let e = search(&index, &request(1, Some("message")))
            .expect_err("text")
            .to_string();
        assert!(e.contains("keyword"), "{e}");
    }
}
