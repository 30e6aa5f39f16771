//! The documents an object yields, learned by delivering it to a sink that only keeps ids: the
//! same reading, splitting, normalizing and exclusions as a load, so nothing can differ but
//! the delivery.

use crate::deliver::DocumentSink;
use crate::sink::{BulkItem, SinkStats, WriteOutcome};
use futures::future::BoxFuture;
use std::collections::HashSet;
use std::sync::Mutex;

/// Keeps the `_id` of every document written to it.
#[derive(Debug, Default)]
pub struct ExpectedSink {
    ids: Mutex<HashSet<String>>,
}

impl ExpectedSink {
    pub fn into_ids(self) -> HashSet<String> {
        self.ids.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

impl DocumentSink for ExpectedSink {
    fn write(&self, items: Vec<BulkItem>) -> BoxFuture<'_, WriteOutcome> {
        Box::pin(async move {
            let n = items.len();
            let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
            ids.extend(items.iter().map(|item| item.id.as_str().to_owned()));
            WriteOutcome {
                stats: SinkStats {
                    created: n as u64,
                    ..SinkStats::default()
                },
                failures: Vec::new(),
                created: (0..n).collect(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Origin;

    #[tokio::test]
    async fn keeps_each_id_once() {
        let sink = ExpectedSink::default();
        let item = |id: &str| BulkItem::new("log-x", id, "{}", Origin::new("o", 0));
        let outcome = sink.write(vec![item("a"), item("b"), item("a")]).await;
        assert!(outcome.is_complete());
        let ids = sink.into_ids();
        assert_eq!(ids.len(), 2);
        assert!(ids.contains("a") && ids.contains("b"));
    }
}
