//! One object on several threads.
//!
//! The calling thread decompresses and splits the object, as it would alone; the records
//! after the first [`INLINE_RECORDS`] go in batches to worker threads, which parse (the
//! records of a records array come unparsed: a record's `Value` is then made, read and freed
//! on one thread), normalize, enrich, evaluate the rules and `prepare` (serialize) the
//! documents. Flow log lines written straight to JSON go the same way, with the header's
//! field names. The batches' results are put back in order on the calling thread, so the
//! documents, their positions, the counts and the errors are those of a load on one thread.
//! A small object never starts a thread.
//!
//! Memory stays bounded: at most [`IN_FLIGHT_PER_WORKER`] batches per worker are split and
//! not yet emitted; the splitter waits for the oldest when there are more.

use super::{Document, ObjectParts, ObjectState, Stats, TypeStats};
use crate::decode::{
    self, FieldsItem, Item, Position, ReadError, Record, RecordError, Splitter, Unparsed,
};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc;

/// Records normalized on the calling thread before any thread is started: most objects (a
/// CloudTrail file of five minutes of one account) are smaller and load as on one thread.
const INLINE_RECORDS: usize = 1024;

/// A batch is cut at this many records or [`BATCH_BYTES`] of raw records, whichever first:
/// a few milliseconds of work, so handing it over costs little and the threads stay even.
const BATCH_RECORDS: usize = 256;
const BATCH_BYTES: usize = 1 << 20;

/// Batches per worker split and not yet emitted.
const IN_FLIGHT_PER_WORKER: usize = 4;

/// A record as the splitter gave it, owned so another thread can take it.
enum OwnedItem {
    Record {
        value: Value,
        /// Its bytes, within the batch's `raw`.
        raw: Option<Range<usize>>,
        position: Position,
    },
    /// A JSON record the worker parses: its `Value` is made, read and freed on one thread.
    Unparsed {
        raw: Range<usize>,
        position: Position,
    },
    /// A line of a flow log object: its values (joined by spaces) and its bytes.
    FlowLine {
        values: Range<usize>,
        raw: Range<usize>,
        position: Position,
    },
    Error(RecordError),
}

/// What the splitter hands over: records, or the lines of a flow log object.
enum Input<'a> {
    Item(Item<'a>),
    Fields(FieldsItem<'a>),
}

struct Batch {
    seq: u64,
    /// The field names of a flow log object's lines.
    header: Option<Arc<[String]>>,
    items: Vec<OwnedItem>,
    raw: Vec<u8>,
}

impl Batch {
    fn new(seq: u64, header: Option<Arc<[String]>>) -> Self {
        Self {
            seq,
            header,
            items: Vec::with_capacity(BATCH_RECORDS),
            raw: Vec::new(),
        }
    }

    fn push(&mut self, input: Input<'_>) {
        let item = match input {
            Input::Item(item) => item,
            Input::Fields(FieldsItem::Line {
                values,
                raw,
                position,
            }) => {
                let start = self.raw.len();
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        self.raw.push(b' ');
                    }
                    self.raw.extend_from_slice(value.as_bytes());
                }
                let values = start..self.raw.len();
                let raw = self.keep(raw);
                return self.items.push(OwnedItem::FlowLine {
                    values,
                    raw,
                    position,
                });
            }
            Input::Fields(FieldsItem::Error(e)) => Item::Error(e),
            // Only the object's start has one, and it is read on the calling thread.
            Input::Fields(FieldsItem::Header(_)) => return,
        };
        let owned = match item {
            Item::Record(record) => OwnedItem::Record {
                value: record.value,
                raw: record.raw.map(|raw| self.keep(raw)),
                position: record.position,
            },
            Item::Unparsed(unparsed) => OwnedItem::Unparsed {
                raw: self.keep(unparsed.raw),
                position: unparsed.position,
            },
            Item::Error(e) => OwnedItem::Error(e),
        };
        self.items.push(owned);
    }

    /// Copies a record's bytes into the batch.
    fn keep(&mut self, raw: &[u8]) -> Range<usize> {
        let start = self.raw.len();
        self.raw.extend_from_slice(raw);
        start..self.raw.len()
    }

    fn is_full(&self) -> bool {
        self.items.len() >= BATCH_RECORDS || self.raw.len() >= BATCH_BYTES
    }
}

/// What a worker made of a batch.
struct Done<T> {
    seq: u64,
    out: Vec<T>,
    stats: Stats,
    counts: TypeStats,
}

/// Splits the object read by `reader` with `splitter`, normalizing on `threads` threads.
/// Returns the records' counts; errors and exclusions go to `stats`, as on one thread.
pub(super) fn split<T: Send>(
    splitter: &Splitter,
    reader: &mut dyn BufRead,
    parts: &ObjectParts<'_>,
    threads: usize,
    stats: &mut Stats,
    prepare: &(dyn Fn(Document) -> T + Sync),
    emit: &mut dyn FnMut(T),
) -> (Result<(), ReadError>, TypeStats) {
    drive(parts, threads, stats, prepare, emit, &mut |push| {
        splitter.split_unparsed(reader, &mut |item| push(Input::Item(item)))
    })
}

/// [`split`] for a flow log object whose lines are written straight to JSON.
#[allow(clippy::too_many_arguments)]
pub(super) fn split_flow<T: Send>(
    reader: &mut dyn BufRead,
    header_lines: usize,
    parts: &ObjectParts<'_>,
    threads: usize,
    stats: &mut Stats,
    prepare: &(dyn Fn(Document) -> T + Sync),
    emit: &mut dyn FnMut(T),
) -> (Result<(), ReadError>, TypeStats) {
    drive(parts, threads, stats, prepare, emit, &mut |push| {
        decode::split_named_fields(reader, header_lines, &mut |item| push(Input::Fields(item)))
    })
}

type Splitting<'r> = dyn FnMut(&mut dyn FnMut(Input<'_>)) -> Result<(), ReadError> + 'r;

fn drive<T: Send>(
    parts: &ObjectParts<'_>,
    threads: usize,
    stats: &mut Stats,
    prepare: &(dyn Fn(Document) -> T + Sync),
    emit: &mut dyn FnMut(T),
    splitting: &mut Splitting<'_>,
) -> (Result<(), ReadError>, TypeStats) {
    let emit = RefCell::new(emit);
    let mut inline_stats = Stats::default();
    let mut inline_emit = |doc: Document| (emit.borrow_mut())(prepare(doc));
    let mut later = Later {
        stats: Stats::default(),
        counts: TypeStats::default(),
        pending: BTreeMap::new(),
        next_emit: 0,
    };
    let result = std::thread::scope(|scope| {
        let mut driver = Driver {
            inline: Some(ObjectState::new(
                parts.clone(),
                &mut inline_stats,
                &mut inline_emit,
            )),
            inline_left: INLINE_RECORDS,
            counts: TypeStats::default(),
            header: None,
            batch: Batch::new(0, None),
            workers: Vec::new(),
            threads,
            done: None,
            dispatched: 0,
            scope,
            parts,
            prepare,
        };
        let result = splitting(&mut |input| driver.push(input, &mut later, &emit));
        driver.finish(&mut later, &emit);
        (result, driver.counts)
    });
    let (result, mut counts) = result;
    stats.merge(inline_stats);
    stats.merge(later.stats);
    counts.add(&later.counts);
    (result, counts)
}

/// The results of batches, put back in order.
struct Later<T> {
    stats: Stats,
    counts: TypeStats,
    /// Results that came before an earlier batch's.
    pending: BTreeMap<u64, Done<T>>,
    next_emit: u64,
}

impl<T> Later<T> {
    fn take(&mut self, done: Done<T>, emit: &RefCell<&mut dyn FnMut(T)>) {
        self.pending.insert(done.seq, done);
        while let Some(done) = self.pending.remove(&self.next_emit) {
            self.next_emit += 1;
            let mut emit = emit.borrow_mut();
            for item in done.out {
                (emit)(item);
            }
            self.stats.merge(done.stats);
            self.counts.add(&done.counts);
        }
    }
}

struct Driver<'scope, 'env, 'p, 'i, T> {
    /// The state records are normalized with on this thread, until threads are started.
    inline: Option<ObjectState<'p, 'i>>,
    inline_left: usize,
    /// The inline records' counts.
    counts: TypeStats,
    /// A flow log object's field names, for the batches.
    header: Option<Arc<[String]>>,
    batch: Batch,
    workers: Vec<mpsc::SyncSender<Batch>>,
    threads: usize,
    done: Option<mpsc::Receiver<Done<T>>>,
    dispatched: u64,
    scope: &'scope std::thread::Scope<'scope, 'env>,
    parts: &'env ObjectParts<'env>,
    prepare: &'env (dyn Fn(Document) -> T + Sync),
}

impl<'scope, 'env, T: Send + 'scope> Driver<'scope, 'env, '_, '_, T> {
    fn push(&mut self, input: Input<'_>, later: &mut Later<T>, emit: &RefCell<&mut dyn FnMut(T)>) {
        if let Some(state) = self.inline.as_mut() {
            if self.inline_left > 0 {
                self.inline_left -= 1;
                match input {
                    Input::Item(item) => state.item(item),
                    Input::Fields(item) => {
                        if let FieldsItem::Header(names) = item {
                            self.header = Some(Arc::from(names));
                            self.batch.header = self.header.clone();
                        }
                        state.flow_item(item)
                    }
                }
                return;
            }
            self.counts.add(&state.counts);
            self.inline = None;
        }
        self.batch.push(input);
        if self.batch.is_full() {
            self.dispatch(later, emit);
        }
    }

    fn dispatch(&mut self, later: &mut Later<T>, emit: &RefCell<&mut dyn FnMut(T)>) {
        if self.workers.is_empty() {
            self.start();
        }
        let seq = self.dispatched;
        let next = Batch::new(seq + 1, self.header.clone());
        let batch = std::mem::replace(&mut self.batch, next);
        self.dispatched += 1;
        let Some(done) = self.done.as_ref() else {
            return;
        };
        // Wait for the oldest batches while too many are out.
        let limit = (self.workers.len() * IN_FLIGHT_PER_WORKER) as u64;
        while self.dispatched - later.next_emit > limit {
            match done.recv() {
                Ok(result) => later.take(result, emit),
                Err(_) => break,
            }
        }
        // Round robin: batches are about even.
        let worker = seq as usize % self.workers.len();
        if self.workers[worker].send(batch).is_err() {
            // A worker that stopped (it panicked): the scope reports it when it ends.
            return;
        }
        while let Ok(result) = done.try_recv() {
            later.take(result, emit);
        }
    }

    fn start(&mut self) {
        let (done_tx, done_rx) = mpsc::channel();
        for _ in 0..self.threads {
            let (tx, rx) = mpsc::sync_channel::<Batch>(IN_FLIGHT_PER_WORKER);
            let done_tx = done_tx.clone();
            let parts = self.parts;
            let prepare = self.prepare;
            self.scope.spawn(move || {
                for batch in rx {
                    if done_tx.send(work(batch, parts, prepare)).is_err() {
                        return;
                    }
                }
            });
            self.workers.push(tx);
        }
        self.done = Some(done_rx);
    }

    fn finish(&mut self, later: &mut Later<T>, emit: &RefCell<&mut dyn FnMut(T)>) {
        if let Some(state) = self.inline.take() {
            self.counts.add(&state.counts);
        }
        if !self.batch.items.is_empty() {
            self.dispatch(later, emit);
        }
        // Closing the queues ends the workers once they are done.
        self.workers.clear();
        if let Some(done) = self.done.take() {
            for result in done {
                later.take(result, emit);
            }
        }
    }
}

/// Normalizes one batch, as the calling thread would.
fn work<T>(
    batch: Batch,
    parts: &ObjectParts<'_>,
    prepare: &(dyn Fn(Document) -> T + Sync),
) -> Done<T> {
    let mut stats = Stats::default();
    let mut out = Vec::with_capacity(batch.items.len());
    let mut push = |doc: Document| out.push(prepare(doc));
    let mut state = ObjectState::new(parts.clone(), &mut stats, &mut push);
    if let Some(names) = &batch.header {
        state.flow_item(FieldsItem::Header(names));
    }
    let mut values: Vec<&str> = Vec::new();
    for item in batch.items {
        state.item(match item {
            OwnedItem::FlowLine {
                values: line,
                raw,
                position,
            } => {
                // Written from the line's values, so always UTF-8.
                let line = std::str::from_utf8(&batch.raw[line]).unwrap_or_default();
                values.clear();
                values.extend(line.split_ascii_whitespace());
                state.flow_item(FieldsItem::Line {
                    values: &values,
                    raw: &batch.raw[raw],
                    position,
                });
                continue;
            }
            OwnedItem::Record {
                value,
                raw,
                position,
            } => Item::Record(Record {
                value,
                raw: raw.and_then(|range| batch.raw.get(range)),
                position,
            }),
            OwnedItem::Unparsed { raw, position } => Item::Unparsed(Unparsed {
                raw: &batch.raw[raw],
                position,
            }),
            OwnedItem::Error(e) => Item::Error(e),
        });
    }
    let counts = std::mem::take(&mut state.counts);
    drop(state);
    Done {
        seq: batch.seq,
        out,
        stats,
        counts,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::pipeline::{Document, Pipeline, Stats};
    use chrono::{TimeZone, Utc};
    use std::sync::Arc;

    fn load(pipeline: &Pipeline, key: &str, bytes: &[u8]) -> (Vec<Document>, Stats) {
        let ingested = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
        let mut stats = Stats::default();
        let mut docs = Vec::new();
        pipeline.load_object(key, key, bytes, ingested, &mut stats, &mut |d| docs.push(d));
        (docs, stats)
    }

    fn assert_same_as_one_thread(one: &Pipeline, many: &Pipeline, key: &str, bytes: &[u8]) {
        let (docs_one, stats_one) = load(one, key, bytes);
        let (docs_many, stats_many) = load(many, key, bytes);
        assert!(
            docs_one.len() > super::INLINE_RECORDS,
            "{key}: too small to test"
        );
        assert_eq!(docs_one.len(), docs_many.len(), "{key}");
        // Equal documents in equal order.
        for (a, b) in docs_one.iter().zip(&docs_many) {
            assert_eq!(a, b, "{key}");
        }
        assert_eq!(stats_one.per_type, stats_many.per_type, "{key}");
        assert_eq!(stats_one.excluded, stats_many.excluded, "{key}");
        assert_eq!(stats_one.error_count, stats_many.error_count, "{key}");
        assert_eq!(stats_one.errors, stats_many.errors, "{key}");
    }

    #[test]
    fn every_type_loads_on_several_threads_as_on_one() {
        let config = Config::builtin().expect("config");
        let rules = Arc::new(crate::rules::RuleSet::with_bundled(&config, &[], &[]));
        let one = Pipeline::new(config).with_rules(Some(rules));
        let many = one.clone().with_threads(3);
        for t in crate::bench::types() {
            let (key, raw) = crate::bench::generate(&t, 1_500);
            assert_same_as_one_thread(&one, &many, &key, &raw);
        }
    }

    #[test]
    fn flow_log_lines_written_straight_to_json_load_on_several_threads_as_on_one() {
        // Without rules, flow log lines never become maps (the direct path).
        let one = Pipeline::new(Config::builtin().expect("config"));
        let many = one.clone().with_threads(3);
        let (key, raw) = crate::bench::generate("vpcflowlogs", 4_000);
        let text = String::from_utf8(raw).expect("text");
        let mut lines: Vec<&str> = text.lines().collect();
        for at in [3_500, 2_000, 1_100, 9] {
            lines.insert(at, "2 111122223333 eni-1 too few fields");
        }
        let object = lines.join("\n");
        assert_same_as_one_thread(&one, &many, &key, object.as_bytes());
        let (docs, stats) = load(&many, &key, object.as_bytes());
        assert_eq!((docs.len(), stats.error_count), (4_000, 4));
        assert!(matches!(docs[0].source, crate::pipeline::Source::Json(_)));
    }

    #[test]
    fn bad_records_are_reported_in_order_whatever_thread_met_them() {
        let (key, raw) = crate::bench::generate("cloudtrail", 4_000);
        let mut object: serde_json::Value = serde_json::from_slice(&raw).expect("json");
        let records = object["Records"].as_array_mut().expect("records");
        for at in [3_900, 2_500, 1_300, 700, 5] {
            records.insert(at, serde_json::json!(["not", "a", "record"]));
            records.insert(at, serde_json::json!({"eventTime": "yesterday"}));
        }
        let bytes = serde_json::to_vec(&object).expect("json");
        let one = Pipeline::new(Config::builtin().expect("config"));
        let many = one.clone().with_threads(4);
        assert_same_as_one_thread(&one, &many, &key, &bytes);
        let (_, stats) = load(&many, &key, &bytes);
        assert_eq!(stats.error_count, 10);
    }
}
