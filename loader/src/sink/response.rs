//! Reading a `_bulk` answer into one result per item, in request order.

use serde::Deserialize;

/// The result of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemResult {
    pub status: u16,
    /// `error.type` and `error.reason` when the item failed (with `caused_by.reason` appended,
    /// which is where OpenSearch says what exactly did not parse).
    pub error: Option<ItemError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    pub kind: String,
    pub reason: String,
}

impl std::fmt::Display for ItemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.reason)
    }
}

/// A bulk answer the sink cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("the bulk response is not the expected JSON: {0}")]
    Malformed(String),
    #[error("the bulk response lists {got} items for {sent} sent")]
    CountMismatch { sent: usize, got: usize },
}

#[derive(Deserialize)]
struct Body {
    items: Vec<Item>,
}

/// Each item is an object with one key, the operation (`create` for us).
#[derive(Deserialize)]
struct Item {
    #[serde(alias = "index", alias = "update", alias = "delete")]
    create: ItemBody,
}

#[derive(Deserialize)]
struct ItemBody {
    status: u16,
    #[serde(default)]
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    caused_by: Option<Box<RawError>>,
}

/// The answer's `errors` flag and its number of items, read without building the items.
#[derive(Deserialize)]
struct Summary {
    #[serde(default)]
    errors: Option<bool>,
    items: Vec<serde::de::IgnoredAny>,
}

/// Parses the answer to a request of `sent` items. Fails when the JSON is not a bulk answer or
/// does not list exactly one result per item (the caller then retries the whole request).
pub fn parse_bulk_response(body: &[u8], sent: usize) -> Result<Vec<ItemResult>, ResponseError> {
    // Most answers say `"errors":false`: every item was created, and reading each one costs
    // more than the flag and a count (the sink only sends `create`, whose success is 201).
    if let Ok(Summary {
        errors: Some(false),
        items,
    }) = serde_json::from_slice::<Summary>(body)
    {
        if items.len() != sent {
            return Err(ResponseError::CountMismatch {
                sent,
                got: items.len(),
            });
        }
        return Ok(vec![
            ItemResult {
                status: 201,
                error: None,
            };
            sent
        ]);
    }
    let parsed: Body =
        serde_json::from_slice(body).map_err(|e| ResponseError::Malformed(e.to_string()))?;
    if parsed.items.len() != sent {
        return Err(ResponseError::CountMismatch {
            sent,
            got: parsed.items.len(),
        });
    }
    Ok(parsed
        .items
        .into_iter()
        .map(|item| ItemResult {
            status: item.create.status,
            error: item.create.error.map(|e| {
                let mut reason = e.reason;
                if let Some(cause) = e.caused_by.filter(|c| !c.reason.is_empty()) {
                    reason = format!("{reason} (caused by {}: {})", cause.kind, cause.reason);
                }
                ItemError {
                    kind: e.kind,
                    reason,
                }
            }),
        })
        .collect())
}

/// A short description of a whole-request error body for messages (the `error.reason` when the
/// body is OpenSearch's error JSON, else the start of the text).
pub fn error_summary(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: RawErrorOrString,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum RawErrorOrString {
        Raw(RawError),
        Text(String),
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody {
            error: RawErrorOrString::Raw(e),
        }) => format!("{}: {}", e.kind, e.reason),
        Ok(ErrorBody {
            error: RawErrorOrString::Text(t),
        }) => t,
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let mut short: String = text.chars().take(200).collect();
            if text.chars().count() > 200 {
                short.push('…');
            }
            short
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer as osmem-server (and OpenSearch) gives it.
    const MIXED: &str = r#"{"errors":true,"took":1,"items":[
      {"create":{"_id":"a","_index":"mapt","_version":1,"result":"created","status":201}},
      {"create":{"_id":"b","_index":"mapt","status":400,"error":{"type":"mapper_parsing_exception",
        "reason":"failed to parse field [n] of type [integer] in document with id 'b'",
        "caused_by":{"type":"number_format_exception","reason":"For input string: \"abc\""}}}},
      {"create":{"_id":"a","_index":"mapt","status":409,"error":{"type":"version_conflict_engine_exception",
        "reason":"[a]: version conflict, document already exists (current version [1])"}}},
      {"create":{"_id":"c","_index":"mapt","status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}}
    ]}"#;

    #[test]
    fn per_item_statuses_and_errors_in_order() {
        let items = parse_bulk_response(MIXED.as_bytes(), 4).expect("valid");
        let statuses: Vec<u16> = items.iter().map(|i| i.status).collect();
        assert_eq!(statuses, vec![201, 400, 409, 429]);
        assert_eq!(items[0].error, None);
        let err = items[1].error.as_ref().expect("error");
        assert_eq!(err.kind, "mapper_parsing_exception");
        assert!(err.reason.contains("field [n]"));
        assert!(err.reason.contains("For input string"), "{}", err.reason);
        assert_eq!(
            err.to_string().split(':').next(),
            Some("mapper_parsing_exception")
        );
    }

    #[test]
    fn count_mismatch_and_garbage_are_errors() {
        assert_eq!(
            parse_bulk_response(MIXED.as_bytes(), 5),
            Err(ResponseError::CountMismatch { sent: 5, got: 4 })
        );
        assert!(matches!(
            parse_bulk_response(b"<html>bad gateway</html>", 1),
            Err(ResponseError::Malformed(_))
        ));
        assert!(matches!(
            parse_bulk_response(br#"{"items":[{"create":{}}]}"#, 1),
            Err(ResponseError::Malformed(_))
        ));
    }

    #[test]
    fn an_answer_without_errors_is_every_item_created() {
        let body = br#"{"took":3,"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}"#;
        let items = parse_bulk_response(body, 2).expect("valid");
        assert_eq!(
            items,
            vec![
                ItemResult {
                    status: 201,
                    error: None
                };
                2
            ]
        );
        assert_eq!(
            parse_bulk_response(body, 3),
            Err(ResponseError::CountMismatch { sent: 3, got: 2 })
        );
        // With errors (MIXED) or without the flag, every item is read.
        let unflagged = br#"{"items":[{"create":{"status":409}}]}"#;
        assert_eq!(
            parse_bulk_response(unflagged, 1).expect("valid")[0].status,
            409
        );
    }

    #[test]
    fn index_operations_are_read_too() {
        let items =
            parse_bulk_response(br#"{"items":[{"index":{"status":201}}]}"#, 1).expect("valid");
        assert_eq!(items[0].status, 201);
    }

    #[test]
    fn error_summaries() {
        assert_eq!(
            error_summary(br#"{"error":{"type":"security_exception","reason":"no permissions"},"status":403}"#),
            "security_exception: no permissions"
        );
        assert_eq!(error_summary(br#"{"error":"plain"}"#), "plain");
        assert_eq!(error_summary(b"Bad Gateway"), "Bad Gateway");
        let long = "x".repeat(500);
        assert_eq!(error_summary(long.as_bytes()).chars().count(), 201);
    }
}
