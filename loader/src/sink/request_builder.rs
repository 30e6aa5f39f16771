//! Cutting items into bulk requests within the byte and count limits, and building a request's
//! body. Requests refer to items by position, so a retry re-encodes only the items that failed.

use super::BulkItem;
use super::encoder::{encode_body, encode_gzip, encoded_len};

/// Limits for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Target uncompressed body size; an item larger than this goes alone.
    pub max_bytes: usize,
    pub max_items: usize,
}

/// Groups `positions` (indexes into `items`, in order) into requests: each holds at most
/// `max_items` items and at most `max_bytes` bytes, except that an item larger than `max_bytes`
/// forms a request of its own (items over the hard limit are refused before this).
pub fn plan_batches(
    items: &[BulkItem],
    positions: &[usize],
    limits: BatchLimits,
) -> Vec<Vec<usize>> {
    let max_items = limits.max_items.max(1);
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut current_bytes = 0usize;
    for &pos in positions {
        let Some(item) = items.get(pos) else { continue };
        let size = encoded_len(item);
        if !current.is_empty()
            && (current.len() >= max_items || current_bytes + size > limits.max_bytes)
        {
            batches.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current.push(pos);
        current_bytes += size;
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Splits a request in two halves by count (for HTTP 413). A single item cannot be split.
pub fn halve(batch: &[usize]) -> Option<(Vec<usize>, Vec<usize>)> {
    if batch.len() < 2 {
        return None;
    }
    let (a, b) = batch.split_at(batch.len() / 2);
    Some((a.to_vec(), b.to_vec()))
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRequest {
    /// The items it carries, in body order (the response lists results in the same order).
    pub positions: Vec<usize>,
    /// The body as sent: gzip unless `gzip` is false.
    pub body: Vec<u8>,
    pub gzip: bool,
    pub uncompressed_len: usize,
}

/// Encodes the items at `positions` and compresses the body at `gzip_level` (0: none).
pub fn build_request(items: &[BulkItem], positions: Vec<usize>, gzip_level: u32) -> BulkRequest {
    let selected: Vec<&BulkItem> = positions.iter().filter_map(|&p| items.get(p)).collect();
    let (body, uncompressed_len) = if gzip_level == 0 {
        let body = encode_body(selected.iter().copied());
        let len = body.len();
        (body, len)
    } else {
        let estimate = selected.iter().map(|i| encoded_len(i)).sum();
        encode_gzip(&selected, gzip_level, estimate)
    };
    BulkRequest {
        positions,
        body,
        gzip: gzip_level > 0,
        uncompressed_len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Origin;

    fn items(n: usize, source_len: usize) -> Vec<BulkItem> {
        (0..n)
            .map(|i| {
                let source = format!("{{\"m\":\"{}\"}}", "x".repeat(source_len));
                BulkItem::new(
                    "idx",
                    format!("{i:04}"),
                    source.into_bytes(),
                    Origin::new("o", i as u64),
                )
            })
            .collect()
    }

    #[test]
    fn batches_respect_count_and_bytes_and_keep_order() {
        let all = items(10, 50);
        let one = encoded_len(&all[0]);
        let positions: Vec<usize> = (0..10).collect();
        let by_count = plan_batches(
            &all,
            &positions,
            BatchLimits {
                max_bytes: usize::MAX,
                max_items: 4,
            },
        );
        assert_eq!(
            by_count,
            vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]
        );
        let by_bytes = plan_batches(
            &all,
            &positions,
            BatchLimits {
                max_bytes: one * 3,
                max_items: 100,
            },
        );
        assert_eq!(by_bytes.len(), 4);
        assert!(by_bytes.iter().all(|b| b.len() <= 3));
        assert_eq!(by_bytes.concat(), positions);
    }

    #[test]
    fn an_item_larger_than_the_target_goes_alone() {
        let mut all = items(3, 10);
        all[1].source = format!("{{\"m\":\"{}\"}}", "y".repeat(500))
            .into_bytes()
            .into();
        let batches = plan_batches(
            &all,
            &[0, 1, 2],
            BatchLimits {
                max_bytes: 200,
                max_items: 100,
            },
        );
        assert_eq!(batches, vec![vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn subsets_and_unknown_positions() {
        let all = items(5, 10);
        let batches = plan_batches(
            &all,
            &[4, 1, 99],
            BatchLimits {
                max_bytes: 10_000,
                max_items: 10,
            },
        );
        assert_eq!(batches, vec![vec![4, 1]]);
        assert!(
            plan_batches(
                &all,
                &[],
                BatchLimits {
                    max_bytes: 1,
                    max_items: 1
                }
            )
            .is_empty()
        );
    }

    proptest::proptest! {
        /// Whatever the sizes and limits: every position exactly once, in order, and no request
        /// over the limits unless it is a single oversized item.
        #[test]
        fn batches_cover_everything_within_limits(
            sizes in proptest::collection::vec(0usize..400, 0..120),
            max_bytes in 1usize..2_000,
            max_items in 1usize..20,
        ) {
            let all: Vec<BulkItem> = sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| BulkItem::new("idx", i.to_string(), vec![b'x'; n], Origin::new("o", i as u64)))
                .collect();
            let positions: Vec<usize> = (0..all.len()).collect();
            let batches = plan_batches(&all, &positions, BatchLimits { max_bytes, max_items });
            proptest::prop_assert_eq!(batches.concat(), positions);
            for batch in &batches {
                proptest::prop_assert!(!batch.is_empty() && batch.len() <= max_items);
                let bytes: usize = batch.iter().map(|&p| encoded_len(&all[p])).sum();
                proptest::prop_assert!(bytes <= max_bytes || batch.len() == 1);
                let body = build_request(&all, batch.clone(), 0).body;
                proptest::prop_assert_eq!(body.len(), bytes);
            }
        }
    }

    #[test]
    fn halving() {
        assert_eq!(halve(&[1, 2, 3, 4, 5]), Some((vec![1, 2], vec![3, 4, 5])));
        assert_eq!(halve(&[7]), None);
    }

    #[test]
    fn request_body_lists_items_in_order() {
        let all = items(3, 5);
        let req = build_request(&all, vec![2, 0], 0);
        assert!(!req.gzip);
        let text = String::from_utf8(req.body).expect("utf-8");
        let ids: Vec<&str> = text
            .lines()
            .step_by(2)
            .map(|l| {
                l.split("\"_id\":\"")
                    .nth(1)
                    .and_then(|r| r.get(..4))
                    .unwrap_or("")
            })
            .collect();
        assert_eq!(ids, vec!["0002", "0000"]);
        assert_eq!(req.uncompressed_len, text.len());
        let gz = build_request(&all, vec![0, 1, 2], 1);
        assert!(gz.gzip);
        assert_eq!(&gz.body[..2], &[0x1f, 0x8b]);
    }
}
