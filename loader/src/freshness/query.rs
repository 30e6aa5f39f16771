//! The newest event of every source, from the indices: a composite aggregation read page by
//! page, so an organization of any size is read in full.

use super::{Sighting, SourceId};
use crate::config::Config;
use crate::setup::Http;
use chrono::{DateTime, Utc};
use opensearch::http::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Sources per page.
pub const PAGE: usize = 1000;

/// Why the sources could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FreshnessError {
    #[error("OpenSearch did not answer the search of {indices}: {reason}")]
    Unreachable { indices: String, reason: String },
    #[error("OpenSearch answered HTTP {status} to the search of {indices}: {body}")]
    Refused {
        indices: String,
        status: u16,
        body: String,
    },
    #[error("the answer to the search of {indices} is not a composite aggregation: {reason}")]
    Answer { indices: String, reason: String },
}

/// The index patterns of every configured type (`log-aws-cloudtrail-*,...`).
pub fn index_patterns(config: &Config) -> String {
    let names: BTreeSet<&str> = config
        .types
        .iter()
        .map(|t| t.index_name.as_str())
        .filter(|n| !n.is_empty())
        .collect();
    names
        .into_iter()
        .map(|n| format!("{n}-*"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The search of one page: sources with documents since `since`, after the page `after`.
pub fn request_body(since: DateTime<Utc>, after: Option<&Value>, page: usize) -> Value {
    let mut composite = json!({
        "size": page,
        "sources": [
            {"type": {"terms": {"field": "@log_type"}}},
            {"account": {"terms": {"field": "cloud.account.id", "missing_bucket": true}}},
            {"region": {"terms": {"field": "cloud.region", "missing_bucket": true}}},
        ],
    });
    if let Some(after) = after {
        composite["after"] = after.clone();
    }
    json!({
        "size": 0,
        "track_total_hits": false,
        "query": {"range": {"@timestamp": {"gte": crate::pipeline::format_time(since)}}},
        "aggs": {
            "sources": {
                "composite": composite,
                "aggs": {
                    "newest_event": {"max": {"field": "@timestamp"}},
                    "last_loaded": {"max": {"field": "event.ingested"}},
                },
            },
        },
    })
}

fn millis(bucket: &Value, name: &str) -> Option<DateTime<Utc>> {
    let value = bucket.get(name)?.get("value")?.as_f64()?;
    DateTime::from_timestamp_millis(value as i64)
}

fn key_text(key: &Value, name: &str) -> Option<String> {
    match key.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The sightings of one answer and the key to ask the next page after (`None`: the last page).
pub fn parse_page(answer: &Value, page: usize) -> Result<(Vec<Sighting>, Option<Value>), String> {
    let aggregation = answer
        .pointer("/aggregations/sources")
        .ok_or("no aggregations.sources")?;
    let buckets = aggregation
        .get("buckets")
        .and_then(Value::as_array)
        .ok_or("no buckets")?;
    let mut out = Vec::with_capacity(buckets.len());
    for bucket in buckets {
        let key = bucket.get("key").ok_or("a bucket without a key")?;
        let Some(log_type) = key_text(key, "type") else {
            continue;
        };
        // A bucket without a readable time has no document with one: nothing to judge.
        let Some(newest_event) = millis(bucket, "newest_event") else {
            continue;
        };
        out.push(Sighting {
            source: SourceId {
                log_type,
                account: key_text(key, "account"),
                region: key_text(key, "region"),
            },
            newest_event,
            last_loaded: millis(bucket, "last_loaded"),
            documents: bucket.get("doc_count").and_then(Value::as_u64).unwrap_or(0),
        });
    }
    // OpenSearch gives after_key with every non-empty page; a short page is the last.
    let next = match aggregation.get("after_key") {
        Some(after) if buckets.len() >= page => Some(after.clone()),
        _ => None,
    };
    Ok((out, next))
}

/// Every source with documents in `indices` since `since`, `page` sources per request.
pub async fn sightings(
    http: &dyn Http,
    indices: &str,
    since: DateTime<Utc>,
    page: usize,
) -> Result<Vec<Sighting>, FreshnessError> {
    let page = page.max(1);
    let path = format!("/{indices}/_search");
    let query = [("ignore_unavailable", "true"), ("allow_no_indices", "true")];
    let mut after: Option<Value> = None;
    let mut out = Vec::new();
    loop {
        let body = request_body(since, after.as_ref(), page)
            .to_string()
            .into_bytes();
        let reply = http
            .request(Method::Post, &path, &query, Some(body))
            .await
            .map_err(|e| FreshnessError::Unreachable {
                indices: indices.to_owned(),
                reason: e.to_string(),
            })?;
        if !(200..300).contains(&reply.status) {
            return Err(FreshnessError::Refused {
                indices: indices.to_owned(),
                status: reply.status,
                body: String::from_utf8_lossy(&reply.body)
                    .chars()
                    .take(500)
                    .collect(),
            });
        }
        let answer: Value =
            serde_json::from_slice(&reply.body).map_err(|e| FreshnessError::Answer {
                indices: indices.to_owned(),
                reason: e.to_string(),
            })?;
        let (page, next) = parse_page(&answer, page).map_err(|reason| FreshnessError::Answer {
            indices: indices.to_owned(),
            reason,
        })?;
        out.extend(page);
        match next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}
